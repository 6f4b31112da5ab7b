//! The classification engine: compile once, run many times, each run in a fresh sandbox.
//!
//! Why this exists: the server classifies every result it receives, so a classification
//! must cost microseconds, not the ~400 µs of a new Lua runtime per call the original paid,
//! while still giving every run a clean environment and hard limits. An [`Engine`] owns one
//! Lua state and a bounded cache of compiled classifiers; it is `Send` but not meant to be
//! shared, so callers keep one per blocking worker thread or use an [`EnginePool`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::ffi::c_int;

use mlua::{ffi, Function, Lua, LuaString, MultiValue, Table, Value};
use prophasis_model::{CheckResult, Classification, Millis, ResultType};
use serde::{Deserialize, Serialize};

use crate::sandbox::{self, Abort, RunGuard, CHUNK_NAME};

/// Limits and sizes of an [`Engine`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// VM instructions one run may execute (pattern-matching steps count as instructions).
    /// Checked every 1000 instructions.
    pub instructions: u64,
    /// Bytes one run may allocate beyond what the engine and the run's inputs hold.
    pub memory_bytes: usize,
    /// Wall-clock bound of one run, not counting time spent in [`HistorySource`].
    pub wall_clock: Duration,
    /// Longest accepted classifier source, in bytes.
    pub max_code_bytes: usize,
    /// Most results one `history()` call returns.
    pub max_history: usize,
    /// Most `history()` calls in one run (each may be a database query).
    pub max_history_calls: usize,
    /// Compiled classifiers kept per engine; the least recently used is dropped first.
    pub cache_capacity: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            instructions: 1_000_000,
            memory_bytes: 8 << 20,
            wall_clock: Duration::from_millis(250),
            max_code_bytes: 64 << 10,
            max_history: 1_000,
            max_history_calls: 8,
            cache_capacity: 512,
        }
    }
}

/// Something a classifier did wrong, for the system log and for the UI next to the code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// 1-based line of the classifier code, when known.
    pub line: Option<u32>,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The result of one run: a classification, and why it is `unknown` when the code failed.
/// A classifier that deliberately returns `"unknown"` has no diagnostics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub classification: Classification,
    pub diagnostics: Vec<Diagnostic>,
}

impl Outcome {
    fn failed(d: Diagnostic) -> Outcome {
        Outcome {
            classification: Classification::Unknown,
            diagnostics: vec![d],
        }
    }
}

/// One past result as a classifier sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// `None` reaches Lua as the string `"none"`.
    pub value: Option<f64>,
    pub message: String,
    pub result_type: ResultType,
    pub timestamp: Millis,
}

impl From<&CheckResult> for Sample {
    fn from(r: &CheckResult) -> Sample {
        Sample {
            value: r.value,
            message: r.message.clone(),
            result_type: r.result_type,
            timestamp: r.timestamp,
        }
    }
}

/// Inputs given as parallel arrays (the dry-run API's shape) do not line up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("{field} has {got} entries but values has {want}")]
    LengthMismatch {
        field: &'static str,
        got: usize,
        want: usize,
    },
}

/// Builds samples from parallel arrays, oldest first. Without timestamps the samples are
/// placed one minute apart, the newest at `now`.
pub fn samples_from_columns(
    values: &[Option<f64>],
    messages: &[String],
    result_types: &[ResultType],
    timestamps: Option<&[Millis]>,
    now: Millis,
) -> Result<Vec<Sample>, InputError> {
    let n = values.len();
    let check = |field, got| {
        if got == n {
            Ok(())
        } else {
            Err(InputError::LengthMismatch {
                field,
                got,
                want: n,
            })
        }
    };
    check("messages", messages.len())?;
    check("result_types", result_types.len())?;
    if let Some(t) = timestamps {
        check("timestamps", t.len())?;
    }
    Ok((0..n)
        .map(|i| Sample {
            value: values[i],
            message: messages[i].clone(),
            result_type: result_types[i],
            timestamp: timestamps.map_or(now - (n - 1 - i) as i64 * 60_000, |t| t[i]),
        })
        .collect())
}

/// Why a [`HistorySource`] could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HistoryError(pub String);

/// Past results of other plugins on the same host, for the `history(plugin_id, n)` helper.
/// The server implements it over the store; `n` is already capped by
/// [`EngineConfig::max_history`].
pub trait HistorySource {
    /// The last `n` results of `plugin_id` on the host being classified, oldest first.
    /// An unknown plugin or one without results is an empty vector, not an error.
    fn history(&self, plugin_id: &str, n: usize) -> Result<Vec<Sample>, HistoryError>;
}

/// For runs that have no host context (e.g. a dry run without one): `history()` returns
/// empty arrays.
pub struct NoHistory;

impl HistorySource for NoHistory {
    fn history(&self, _plugin_id: &str, _n: usize) -> Result<Vec<Sample>, HistoryError> {
        Ok(Vec::new())
    }
}

/// Fixed history per plugin id, for tests and dry runs.
impl HistorySource for HashMap<String, Vec<Sample>> {
    fn history(&self, plugin_id: &str, n: usize) -> Result<Vec<Sample>, HistoryError> {
        let all = self.get(plugin_id).map(Vec::as_slice).unwrap_or(&[]);
        Ok(all[all.len().saturating_sub(n)..].to_vec())
    }
}

/// The engine could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("could not create the Lua state: {0}")]
    Lua(#[from] mlua::Error),
}

struct Compiled {
    code: Box<str>,
    result: Result<Function, Diagnostic>,
    uses_history: bool,
    last_used: u64,
}

/// One Lua state with its compiled classifiers. `Send`, used by one thread at a time.
///
/// Runs are CPU-bound and synchronous: call them from a blocking thread
/// (`tokio::task::spawn_blocking` or a dedicated worker), never on an async executor thread.
pub struct Engine {
    lua: Lua,
    guard: Arc<RunGuard>,
    /// The prelude's per-run entry point (see prelude.lua).
    runner: Function,
    none: LuaString,
    result_types: Vec<LuaString>,
    cache: HashMap<u64, Compiled>,
    tick: u64,
    config: EngineConfig,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Result<Engine, EngineError> {
        let guard = Arc::new(RunGuard::new(config.memory_bytes));
        let (lua, runner) = sandbox::new_state(&guard)?;
        let none = lua.create_string("none")?;
        let result_types = ResultType::ALL
            .iter()
            .map(|t| lua.create_string(t.as_str()))
            .collect::<mlua::Result<_>>()?;
        lua.gc_collect()?;
        Ok(Engine {
            lua,
            guard,
            runner,
            none,
            result_types,
            cache: HashMap::new(),
            tick: 0,
            config,
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Bytes used by the Lua state (for tests and metrics).
    pub fn used_memory(&self) -> usize {
        self.lua.used_memory()
    }

    /// Runs a full garbage collection.
    pub fn collect_garbage(&self) {
        // Lua frees only half of the spare call frames per cycle (after deep recursion
        // there are many), so repeat while cycles still give memory back.
        let mut before = self.lua.used_memory();
        for _ in 0..16 {
            let _ = self.lua.gc_collect();
            let now = self.lua.used_memory();
            if now >= before {
                break;
            }
            before = now;
        }
    }

    /// Number of compiled classifiers held.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Compiles `code` (or finds it in the cache) and reports a syntax error, for checking a
    /// classifier when it is saved.
    pub fn check(&mut self, code: &str) -> Result<(), Diagnostic> {
        self.compiled(code).map(|_| ())
    }

    /// Classifies with `code` given the last results (oldest first) of a host and plugin.
    /// Never fails: errors and limit breaches are `unknown` with a diagnostic.
    pub fn classify(
        &mut self,
        code: &str,
        inputs: &[Sample],
        history: &dyn HistorySource,
    ) -> Outcome {
        let key = match self.compiled(code) {
            Ok(k) => k,
            Err(d) => return Outcome::failed(d),
        };
        let entry = &self.cache[&key];
        let func = entry
            .result
            .as_ref()
            .expect("compiled() returns Ok only for functions");
        let result = self.run(func, entry.uses_history, inputs, history);
        self.guard.stop();
        let _ = self.lua.set_memory_limit(0);
        match result {
            Ok(out) => out,
            Err(e) => {
                let d = self.diagnose(&e);
                // A run stopped by a limit may leave a lot of garbage behind (a table bomb):
                // give it back now rather than carry it into the next run's budget.
                self.collect_garbage();
                Outcome::failed(d)
            }
        }
    }

    /// The UI's "test against recent results" and `POST /api/v1/classifiers/dry-run`: the
    /// same path as a real run, so what the user sees is what the server will do.
    pub fn dry_run(
        &mut self,
        code: &str,
        inputs: &[Sample],
        history: &dyn HistorySource,
    ) -> Outcome {
        self.classify(code, inputs, history)
    }

    /// The cache key of `code`, compiling it first if needed.
    fn compiled(&mut self, code: &str) -> Result<u64, Diagnostic> {
        self.tick += 1;
        let key = hash(code.as_bytes());
        if let Some(c) = self.cache.get_mut(&key) {
            if *c.code == *code {
                c.last_used = self.tick;
                return c.result.as_ref().map(|_| key).map_err(Clone::clone);
            }
        }
        let result = self.compile(code);
        if self.cache.len() >= self.config.cache_capacity.max(1) && !self.cache.contains_key(&key) {
            if let Some(&oldest) = self
                .cache
                .iter()
                .min_by_key(|(_, c)| c.last_used)
                .map(|(k, _)| k)
            {
                self.cache.remove(&oldest);
            }
        }
        // Only code that names `history` gets the real one: creating it costs a scope per
        // run, which most classifiers do not need.
        let uses_history = code.contains("history");
        let outcome = result.as_ref().map(|_| key).map_err(Clone::clone);
        self.cache.insert(
            key,
            Compiled {
                code: code.into(),
                result,
                uses_history,
                last_used: self.tick,
            },
        );
        outcome
    }

    fn compile(&self, code: &str) -> Result<Function, Diagnostic> {
        if code.len() > self.config.max_code_bytes {
            return Err(Diagnostic {
                line: None,
                message: format!(
                    "classifier is {} bytes long; the limit is {}",
                    code.len(),
                    self.config.max_code_bytes
                ),
            });
        }
        // Compiling is bounded by the code size; the memory limit still applies so a
        // pathological chunk cannot balloon.
        let _ = self
            .lua
            .set_memory_limit(self.lua.used_memory() + self.config.memory_bytes);
        // The environment is the chunk's argument: the runner passes a fresh one per run.
        // Same line, so line numbers in messages stay the user's.
        let source = format!("local _ENV = ...; {code}");
        let f = self
            .lua
            .load(source)
            .set_name(CHUNK_NAME)
            // Text only: precompiled bytecode can break out of any Lua sandbox.
            .set_mode(mlua::chunk::ChunkMode::Text)
            .into_function();
        let _ = self.lua.set_memory_limit(0);
        f.map_err(|e| self.diagnose(&e))
    }

    fn input_tables(&self, inputs: &[Sample]) -> mlua::Result<(Table, Table, Table, Table)> {
        let lua = &self.lua;
        let values = lua.create_sequence_from(inputs.iter().map(|s| match s.value {
            Some(v) => Value::Number(v),
            None => Value::String(self.none.clone()),
        }))?;
        let messages = lua.create_sequence_from(inputs.iter().map(|s| s.message.as_str()))?;
        let result_types = lua.create_sequence_from(
            inputs
                .iter()
                .map(|s| self.result_types[result_type_index(s.result_type)].clone()),
        )?;
        let timestamps = lua.create_sequence_from(inputs.iter().map(|s| s.timestamp))?;
        Ok((values, messages, result_types, timestamps))
    }

    fn run(
        &self,
        func: &Function,
        uses_history: bool,
        inputs: &[Sample],
        history: &dyn HistorySource,
    ) -> mlua::Result<Outcome> {
        let lua = &self.lua;
        // The run's limit covers its inputs too (they are built inside the protected call),
        // so allow for them on top of what the classifier may allocate.
        let input_bytes: usize = inputs.iter().map(|s| s.message.len() + 96).sum();
        lua.set_memory_limit(lua.used_memory() + self.config.memory_bytes + input_bytes)?;
        self.guard
            .start(self.config.instructions, self.config.wall_clock);

        let ret: Value = if uses_history {
            let calls = std::cell::Cell::new(0usize);
            lua.scope(|scope| {
                let f = scope.create_function(|lua, (plugin_id, n): (String, Option<i64>)| {
                    calls.set(calls.get() + 1);
                    if calls.get() > self.config.max_history_calls {
                        return Err(sandbox::located_error(
                            lua,
                            format!(
                                "history: more than {} calls in one run",
                                self.config.max_history_calls
                            ),
                        ));
                    }
                    let n = n.unwrap_or(1).clamp(0, self.config.max_history as i64) as usize;
                    let started = Instant::now();
                    let got = history.history(&plugin_id, n);
                    self.guard.extend_deadline(started.elapsed());
                    let got = got.map_err(|e| {
                        sandbox::located_error(lua, format!("history({plugin_id:?}) failed: {e}"))
                    })?;
                    let got = &got[got.len().saturating_sub(n)..];
                    let (v, m, r, t) = self.input_tables(got)?;
                    Ok(MultiValue::from_iter([
                        Value::Table(v),
                        Value::Table(m),
                        Value::Table(r),
                        Value::Table(t),
                    ]))
                })?;
                self.call_runner(func, Some(&f), inputs)
            })?
        } else {
            self.call_runner(func, None, inputs)?
        };

        Ok(match &ret {
            Value::String(s) => match s.to_str().ok().and_then(|s| Classification::parse(&s)) {
                Some(c) => Outcome {
                    classification: c,
                    diagnostics: Vec::new(),
                },
                None => Outcome::failed(Diagnostic {
                    line: None,
                    message: format!(
                        "classifier returned {:?}; expected one of ok, minor, major, critical, unknown",
                        s.to_string_lossy()
                    ),
                }),
            },
            Value::Nil => Outcome::failed(Diagnostic {
                line: None,
                message: "classifier returned nothing; expected one of ok, minor, major, critical, unknown".into(),
            }),
            other => Outcome::failed(Diagnostic {
                line: None,
                message: format!(
                    "classifier returned a {}; expected one of the strings ok, minor, major, critical, unknown",
                    other.type_name()
                ),
            }),
        })
    }

    /// Builds the four input arrays and calls the runner, all in one protected call: going
    /// through mlua's table API value by value cost more than the classification itself.
    fn call_runner(
        &self,
        func: &Function,
        history: Option<&Function>,
        inputs: &[Sample],
    ) -> mlua::Result<Value> {
        let n = inputs.len();
        // SAFETY: the closure runs inside a protected call that mlua sets up with the three
        // arguments on the stack; it pushes at most 5 more values (within LUA_MINSTACK) and
        // holds no value that needs dropping, so a Lua error (longjmp) out of it leaks
        // nothing. Strings are pushed with explicit lengths.
        unsafe {
            self.lua
                .exec_raw::<Value>((&self.runner, func, history), |state| {
                    let push_str = |s: &str| {
                        ffi::lua_pushlstring(state, s.as_ptr().cast(), s.len());
                    };
                    let narr = n.min(i32::MAX as usize) as c_int;
                    ffi::lua_createtable(state, narr, 0);
                    for (i, s) in inputs.iter().enumerate() {
                        match s.value {
                            Some(v) => ffi::lua_pushnumber(state, v),
                            None => push_str("none"),
                        }
                        ffi::lua_rawseti(state, -2, i as i64 + 1);
                    }
                    ffi::lua_createtable(state, narr, 0);
                    for (i, s) in inputs.iter().enumerate() {
                        push_str(&s.message);
                        ffi::lua_rawseti(state, -2, i as i64 + 1);
                    }
                    ffi::lua_createtable(state, narr, 0);
                    for (i, s) in inputs.iter().enumerate() {
                        push_str(s.result_type.as_str());
                        ffi::lua_rawseti(state, -2, i as i64 + 1);
                    }
                    ffi::lua_createtable(state, narr, 0);
                    for (i, s) in inputs.iter().enumerate() {
                        ffi::lua_pushinteger(state, s.timestamp);
                        ffi::lua_rawseti(state, -2, i as i64 + 1);
                    }
                    // Stack: runner, f, history, values, messages, result_types, timestamps.
                    ffi::lua_call(state, 6, 1);
                })
        }
    }

    fn diagnose(&self, err: &mlua::Error) -> Diagnostic {
        match self.guard.abort_reason() {
            Abort::Instructions => {
                return Diagnostic {
                    line: self.guard.abort_line(),
                    message: format!(
                        "instruction limit of {} exceeded (endless loop?)",
                        self.config.instructions
                    ),
                }
            }
            Abort::WallClock => {
                return Diagnostic {
                    line: self.guard.abort_line(),
                    message: format!(
                        "time limit of {} ms exceeded",
                        self.config.wall_clock.as_millis()
                    ),
                }
            }
            Abort::Inactive => {
                return Diagnostic {
                    line: None,
                    message: "classifier code ran outside a run and was stopped".into(),
                }
            }
            Abort::None => {}
        }
        let text = root_message(err);
        if matches!(innermost(err), mlua::Error::MemoryError(_))
            || text.contains("not enough memory")
        {
            return Diagnostic {
                line: None,
                message: format!(
                    "memory limit of {} bytes exceeded",
                    self.config.memory_bytes
                ),
            };
        }
        split_location(&text)
    }
}

fn result_type_index(t: ResultType) -> usize {
    ResultType::ALL.iter().position(|x| *x == t).unwrap_or(0)
}

fn innermost(err: &mlua::Error) -> &mlua::Error {
    match err {
        mlua::Error::CallbackError { cause, .. } => innermost(cause),
        mlua::Error::WithContext { cause, .. } => innermost(cause),
        e => e,
    }
}

/// The message of an error without mlua's wrapping and without the traceback.
fn root_message(err: &mlua::Error) -> String {
    let text = match innermost(err) {
        mlua::Error::RuntimeError(m) | mlua::Error::MemoryError(m) => m.clone(),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        e => e.to_string(),
    };
    match text.find("\nstack traceback:") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Turns `classifier:12: msg` into line 12 and `msg`.
fn split_location(text: &str) -> Diagnostic {
    let prefix = &CHUNK_NAME[1..];
    if let Some(pos) = text.find(&format!("{prefix}:")) {
        let rest = &text[pos + prefix.len() + 1..];
        if let Some(colon) = rest.find(':') {
            if let Ok(line) = rest[..colon].parse::<u32>() {
                return Diagnostic {
                    line: Some(line),
                    message: rest[colon + 1..].trim_start().to_string(),
                };
            }
        }
    }
    Diagnostic {
        line: None,
        message: text.to_string(),
    }
}

/// A fast non-cryptographic hash: keys the compile cache, whose entries also hold the code
/// and are compared in full, so a collision costs a recompile, never a wrong classifier.
fn hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    for &b in chunks.remainder() {
        h = (h.rotate_left(5) ^ b as u64).wrapping_mul(K);
    }
    h
}

/// A small pool of engines for callers that do not keep one per thread: each call takes an
/// idle engine (or makes one), runs, and puts it back. Holding at most `max_idle` engines
/// bounds memory; compiled code is cached per engine.
pub struct EnginePool {
    config: EngineConfig,
    idle: Mutex<Vec<Engine>>,
    max_idle: usize,
}

impl EnginePool {
    pub fn new(config: EngineConfig, max_idle: usize) -> EnginePool {
        EnginePool {
            config,
            idle: Mutex::new(Vec::new()),
            max_idle: max_idle.max(1),
        }
    }

    /// Runs `f` with an engine of the pool. Call from a blocking thread.
    pub fn with<R>(&self, f: impl FnOnce(&mut Engine) -> R) -> Result<R, EngineError> {
        let taken = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut engine = match taken {
            Some(e) => e,
            None => Engine::new(self.config.clone())?,
        };
        let r = f(&mut engine);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max_idle {
            idle.push(engine);
        }
        Ok(r)
    }

    /// [`Engine::classify`] on a pooled engine.
    pub fn classify(
        &self,
        code: &str,
        inputs: &[Sample],
        history: &dyn HistorySource,
    ) -> Result<Outcome, EngineError> {
        self.with(|e| e.classify(code, inputs, history))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_and_pool_can_move_between_threads() {
        fn send<T: Send>() {}
        fn sync<T: Sync>() {}
        send::<Engine>();
        send::<EnginePool>();
        sync::<EnginePool>();
    }

    #[test]
    fn split_location_finds_line() {
        let d = split_location("classifier:12: attempt to compare nil with number");
        assert_eq!(d.line, Some(12));
        assert_eq!(d.message, "attempt to compare nil with number");
        let d = split_location("something else");
        assert_eq!(d.line, None);
    }

    #[test]
    fn hash_distinguishes_small_changes() {
        assert_ne!(hash(b"return 'ok'"), hash(b"return 'ko'"));
        assert_ne!(hash(b"abcdefgh1"), hash(b"abcdefgh2"));
        assert_eq!(hash(b"same"), hash(b"same"));
    }
}
