-- Prophasis schema version 1 (SQLite).
-- Entity ids use AUTOINCREMENT so a deleted id is never handed out again: URLs, alert
-- history and results that still name it can never point at a different entity.
-- Booleans are INTEGER 0/1. Times are INTEGER milliseconds since the Unix epoch.

CREATE TABLE hosts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    address TEXT NOT NULL,
    port INTEGER NOT NULL,
    description TEXT NOT NULL,
    auth_key TEXT NOT NULL,
    tls_fingerprint TEXT,
    enabled INTEGER NOT NULL
);

CREATE TABLE host_groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL
);

CREATE TABLE host_group_hosts (
    group_id INTEGER NOT NULL REFERENCES host_groups(id) ON DELETE CASCADE,
    host_id INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (group_id, host_id)
);
CREATE INDEX host_group_hosts_host ON host_group_hosts(host_id);

CREATE TABLE host_group_groups (
    group_id INTEGER NOT NULL REFERENCES host_groups(id) ON DELETE CASCADE,
    member_group_id INTEGER NOT NULL REFERENCES host_groups(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (group_id, member_group_id)
);
CREATE INDEX host_group_groups_member ON host_group_groups(member_group_id);

-- `pk` is the small surrogate key the results tables use instead of the reverse-DNS id.
CREATE TABLE plugins (
    pk INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    version REAL NOT NULL,
    n_historical INTEGER NOT NULL,
    classifier TEXT NOT NULL,
    view TEXT NOT NULL,
    view_source TEXT,
    manifest TEXT NOT NULL
);

-- Kept apart from `plugins` so listing plugins never reads archives.
CREATE TABLE plugin_packages (
    plugin_pk INTEGER PRIMARY KEY REFERENCES plugins(pk) ON DELETE CASCADE,
    archive BLOB NOT NULL,
    signature BLOB
);

CREATE TABLE checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL
);

CREATE TABLE check_hosts (
    check_id INTEGER NOT NULL REFERENCES checks(id) ON DELETE CASCADE,
    host_id INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (check_id, host_id)
);
CREATE INDEX check_hosts_host ON check_hosts(host_id);

CREATE TABLE check_host_groups (
    check_id INTEGER NOT NULL REFERENCES checks(id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL REFERENCES host_groups(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (check_id, group_id)
);
CREATE INDEX check_host_groups_group ON check_host_groups(group_id);

CREATE TABLE check_plugins (
    check_id INTEGER NOT NULL REFERENCES checks(id) ON DELETE CASCADE,
    plugin_pk INTEGER NOT NULL REFERENCES plugins(pk) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    args TEXT,
    PRIMARY KEY (check_id, plugin_pk)
);
CREATE INDEX check_plugins_plugin ON check_plugins(plugin_pk);

CREATE TABLE schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL
);

CREATE TABLE schedule_checks (
    schedule_id INTEGER NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
    check_id INTEGER NOT NULL REFERENCES checks(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (schedule_id, check_id)
);
CREATE INDEX schedule_checks_check ON schedule_checks(check_id);

CREATE TABLE intervals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule_id INTEGER NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    period_seconds INTEGER NOT NULL,
    next_run INTEGER
);
CREATE INDEX intervals_schedule ON intervals(schedule_id);

CREATE TABLE services (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL
);

CREATE TABLE service_dependencies (
    service_id INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    host_id INTEGER REFERENCES hosts(id) ON DELETE CASCADE,
    group_id INTEGER REFERENCES host_groups(id) ON DELETE CASCADE,
    CHECK ((host_id IS NULL) <> (group_id IS NULL))
);
CREATE INDEX service_dependencies_service ON service_dependencies(service_id);
CREATE INDEX service_dependencies_host ON service_dependencies(host_id);
CREATE INDEX service_dependencies_group ON service_dependencies(group_id);

CREATE TABLE redundancy_groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    name TEXT NOT NULL
);
CREATE INDEX redundancy_groups_service ON redundancy_groups(service_id);

CREATE TABLE redundancy_group_members (
    redundancy_group_id INTEGER NOT NULL REFERENCES redundancy_groups(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    host_id INTEGER REFERENCES hosts(id) ON DELETE CASCADE,
    group_id INTEGER REFERENCES host_groups(id) ON DELETE CASCADE,
    CHECK ((host_id IS NULL) <> (group_id IS NULL))
);
CREATE INDEX redundancy_group_members_group ON redundancy_group_members(redundancy_group_id);
CREATE INDEX redundancy_group_members_host ON redundancy_group_members(host_id);
CREATE INDEX redundancy_group_members_host_group ON redundancy_group_members(group_id);

CREATE TABLE service_services (
    service_id INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    child_id INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (service_id, child_id)
);
CREATE INDEX service_services_child ON service_services(child_id);

CREATE TABLE alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    from_states TEXT NOT NULL,
    to_states TEXT NOT NULL,
    all_hosts INTEGER NOT NULL,
    all_services INTEGER NOT NULL,
    module TEXT NOT NULL,
    options TEXT NOT NULL,
    enabled INTEGER NOT NULL
);

CREATE TABLE alert_hosts (
    alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    host_id INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (alert_id, host_id)
);
CREATE INDEX alert_hosts_host ON alert_hosts(host_id);

CREATE TABLE alert_host_groups (
    alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL REFERENCES host_groups(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (alert_id, group_id)
);
CREATE INDEX alert_host_groups_group ON alert_host_groups(group_id);

CREATE TABLE alert_services (
    alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    service_id INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (alert_id, service_id)
);
CREATE INDEX alert_services_service ON alert_services(service_id);

CREATE TABLE alert_plugins (
    alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    plugin_pk INTEGER NOT NULL REFERENCES plugins(pk) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (alert_id, plugin_pk)
);
CREATE INDEX alert_plugins_plugin ON alert_plugins(plugin_pk);

CREATE TABLE alert_checks (
    alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    check_id INTEGER NOT NULL REFERENCES checks(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (alert_id, check_id)
);
CREATE INDEX alert_checks_check ON alert_checks(check_id);

CREATE TABLE classifier_overrides (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    plugin_pk INTEGER NOT NULL REFERENCES plugins(pk) ON DELETE CASCADE,
    check_id INTEGER REFERENCES checks(id) ON DELETE CASCADE,
    group_id INTEGER REFERENCES host_groups(id) ON DELETE CASCADE,
    host_id INTEGER REFERENCES hosts(id) ON DELETE CASCADE,
    n_historical INTEGER NOT NULL,
    code TEXT NOT NULL,
    CHECK ((check_id IS NOT NULL) + (group_id IS NOT NULL) + (host_id IS NOT NULL) = 1)
);
CREATE INDEX classifier_overrides_plugin ON classifier_overrides(plugin_pk);
CREATE INDEX classifier_overrides_check ON classifier_overrides(check_id);
CREATE INDEX classifier_overrides_group ON classifier_overrides(group_id);
CREATE INDEX classifier_overrides_host ON classifier_overrides(host_id);

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL
);

CREATE TABLE system_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    category INTEGER NOT NULL,
    title TEXT NOT NULL,
    message TEXT NOT NULL,
    read INTEGER NOT NULL
);
CREATE INDEX system_log_time ON system_log(time);
CREATE INDEX system_log_unread ON system_log(id) WHERE read = 0;

-- The time series. No foreign keys here: checking three parents per row would cost more
-- than the insert itself; the store checks references once per batch and deletes these
-- rows itself when a host or plugin goes. Clustered by (host, plugin, time) so a graph
-- reads contiguous pages.
CREATE TABLE results (
    host_id INTEGER NOT NULL,
    plugin_pk INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    check_id INTEGER,
    value REAL,
    message TEXT NOT NULL,
    result_type INTEGER NOT NULL,
    classification INTEGER NOT NULL,
    PRIMARY KEY (host_id, plugin_pk, ts)
) WITHOUT ROWID;

CREATE TABLE latest (
    host_id INTEGER NOT NULL,
    plugin_pk INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    check_id INTEGER,
    value REAL,
    message TEXT NOT NULL,
    result_type INTEGER NOT NULL,
    classification INTEGER NOT NULL,
    PRIMARY KEY (host_id, plugin_pk)
) WITHOUT ROWID;

CREATE TABLE rollups (
    host_id INTEGER NOT NULL,
    plugin_pk INTEGER NOT NULL,
    resolution INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    min_value REAL,
    max_value REAL,
    sum_value REAL NOT NULL,
    n_value INTEGER NOT NULL,
    n_all INTEGER NOT NULL,
    worst INTEGER NOT NULL,
    PRIMARY KEY (host_id, plugin_pk, resolution, bucket)
) WITHOUT ROWID;
