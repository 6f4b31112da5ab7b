-- Version 8 moves SQLite's older results tier into chunks; PostgreSQL's has been in
-- chunks since 0007, so nothing changes here (the number keeps both schemas at one
-- version).
SELECT 1;
