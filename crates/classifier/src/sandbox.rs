//! Building the sandboxed Lua state and enforcing a run's limits.
//!
//! Why this exists: classifier code is written by users in the web UI and runs on the
//! monitoring server for every result, so it must not reach the host (no `io`, `os`, `load`,
//! `require`, `debug`, …), must not outlive its instruction, memory and wall-clock budget,
//! and must not leave anything behind that another run could see. This module owns the
//! pieces that make that true: the [`RunGuard`] the instruction hook and the pattern
//! functions charge, the Rust replacements for the C functions that could otherwise loop
//! unbounded (`string.find`/`match`/`gmatch`/`gsub`, `string.rep`), and the construction of
//! the frozen global table (`prelude.lua`).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlua::{
    Function, HookTriggers, Lua, LuaOptions, LuaString, MultiValue, StdLib, Table, Value, VmState,
};

use crate::pattern::{self, Budget, Capture, GmatchState, PatternError, Replacement};

/// The instruction hook fires every this many VM instructions; limits are this precise.
pub(crate) const HOOK_EVERY: u32 = 1000;
/// Chunk name of classifier code, so error messages read `classifier:LINE: …`.
pub(crate) const CHUNK_NAME: &str = "=classifier";
const CHUNK_SOURCE: &str = "=classifier";

/// Why a run was stopped from outside the Lua code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Abort {
    None = 0,
    Instructions = 1,
    WallClock = 2,
    /// Lua code ran while no run was active (it cannot happen by design; if it does, the
    /// code is stopped rather than run unbounded).
    Inactive = 3,
}

/// The limits of the current run, shared with the hook and the Rust string functions.
/// Atomics because the hook must be `Send`; all accesses are on the engine's thread, so
/// relaxed ordering is enough.
pub(crate) struct RunGuard {
    epoch: Instant,
    active: AtomicBool,
    budget: AtomicI64,
    deadline_ns: AtomicU64,
    abort: AtomicU8,
    /// Line of the classifier where the run was stopped; 0 when unknown.
    abort_line: AtomicU32,
    /// Largest string the Rust string functions may build (outside Lua's allocator).
    pub(crate) max_string: usize,
}

impl RunGuard {
    pub(crate) fn new(max_string: usize) -> Self {
        RunGuard {
            epoch: Instant::now(),
            active: AtomicBool::new(false),
            budget: AtomicI64::new(0),
            deadline_ns: AtomicU64::new(0),
            abort: AtomicU8::new(Abort::None as u8),
            abort_line: AtomicU32::new(0),
            max_string,
        }
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    pub(crate) fn start(&self, instructions: u64, wall_clock: Duration) {
        self.budget
            .store(instructions.min(i64::MAX as u64) as i64, Ordering::Relaxed);
        self.deadline_ns.store(
            self.now_ns() + wall_clock.as_nanos() as u64,
            Ordering::Relaxed,
        );
        self.abort.store(Abort::None as u8, Ordering::Relaxed);
        self.abort_line.store(0, Ordering::Relaxed);
        self.active.store(true, Ordering::Relaxed);
    }

    pub(crate) fn stop(&self) {
        self.active.store(false, Ordering::Relaxed);
    }

    /// Time spent waiting for the caller (history look-ups) is not the classifier's.
    pub(crate) fn extend_deadline(&self, by: Duration) {
        self.deadline_ns
            .fetch_add(by.as_nanos() as u64, Ordering::Relaxed);
    }

    pub(crate) fn abort_reason(&self) -> Abort {
        match self.abort.load(Ordering::Relaxed) {
            1 => Abort::Instructions,
            2 => Abort::WallClock,
            3 => Abort::Inactive,
            _ => Abort::None,
        }
    }

    pub(crate) fn abort_line(&self) -> Option<u32> {
        match self.abort_line.load(Ordering::Relaxed) {
            0 => None,
            l => Some(l),
        }
    }

    fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed) != Abort::None as u8
    }

    fn set_abort(&self, why: Abort, line: Option<u32>) -> mlua::Error {
        if !self.aborted() {
            self.abort.store(why as u8, Ordering::Relaxed);
            self.abort_line.store(line.unwrap_or(0), Ordering::Relaxed);
        }
        mlua::Error::runtime(match why {
            Abort::Instructions => "instruction limit exceeded",
            Abort::WallClock => "time limit exceeded",
            _ => "classifier code ran outside a run",
        })
    }

    /// Spends `n` instructions; an error once the budget or the deadline is exceeded.
    /// After an abort every further check fails too, so nothing can keep the run going.
    fn charge(&self, lua: &Lua, n: u64) -> mlua::Result<()> {
        if !self.active.load(Ordering::Relaxed) {
            return Err(self.set_abort(Abort::Inactive, None));
        }
        let left = self.budget.fetch_sub(n as i64, Ordering::Relaxed) - n as i64;
        if left < 0 {
            return Err(self.set_abort(Abort::Instructions, classifier_line(lua)));
        }
        // Reading the clock costs more than a short pattern match: check it on the hook's
        // cadence (and for any large charge), not on every small one.
        if n >= HOOK_EVERY as u64 && self.now_ns() > self.deadline_ns.load(Ordering::Relaxed) {
            return Err(self.set_abort(Abort::WallClock, classifier_line(lua)));
        }
        Ok(())
    }
}

/// The innermost line of classifier code on the Lua stack, for diagnostics.
pub(crate) fn classifier_line(lua: &Lua) -> Option<u32> {
    for level in 0..64 {
        let frame = lua.inspect_stack(level, |d| {
            let src = d.source();
            (
                src.source.as_deref() == Some(CHUNK_SOURCE),
                d.current_line(),
            )
        })?;
        if let (true, Some(line)) = frame {
            return Some(line as u32);
        }
    }
    None
}

/// A Lua error raised from Rust, with the classifier line in Lua's own format so the
/// diagnostic can point at it.
pub(crate) fn located_error(lua: &Lua, msg: impl std::fmt::Display) -> mlua::Error {
    match classifier_line(lua) {
        Some(line) => mlua::Error::runtime(format!("classifier:{line}: {msg}")),
        None => mlua::Error::runtime(msg.to_string()),
    }
}

/// Charges pattern-matching steps to the run, one step per instruction.
struct GuardBudget<'a> {
    guard: &'a RunGuard,
    lua: &'a Lua,
    error: Option<mlua::Error>,
}

impl Budget for GuardBudget<'_> {
    fn charge(&mut self, steps: u64) -> Result<(), String> {
        match self.guard.charge(self.lua, steps) {
            Ok(()) => Ok(()),
            Err(e) => {
                let msg = e.to_string();
                self.error = Some(e);
                Err(msg)
            }
        }
    }
}

fn pattern_error(lua: &Lua, err: PatternError, budget: &mut GuardBudget<'_>) -> mlua::Error {
    if let Some(e) = budget.error.take() {
        return e;
    }
    located_error(lua, err)
}

fn capture_value(lua: &Lua, src: &[u8], c: Capture) -> mlua::Result<Value> {
    Ok(match c {
        Capture::Span(a, b) => Value::String(lua.create_string(&src[a..b])?),
        Capture::Position(p) => Value::Integer(p as i64),
    })
}

fn captures_value(lua: &Lua, src: &[u8], caps: &[Capture]) -> mlua::Result<MultiValue> {
    caps.iter().map(|&c| capture_value(lua, src, c)).collect()
}

fn truthy(v: &Value) -> bool {
    !matches!(v, Value::Nil | Value::Boolean(false))
}

/// Replacement value of `gsub` with a table or function: false/nil keeps the match.
fn replacement_bytes(lua: &Lua, v: Value) -> mlua::Result<Option<Vec<u8>>> {
    match v {
        Value::Nil | Value::Boolean(false) => Ok(None),
        Value::String(s) => Ok(Some(s.as_bytes().to_vec())),
        v @ (Value::Integer(_) | Value::Number(_)) => {
            Ok(lua.coerce_string(v)?.map(|s| s.as_bytes().to_vec()))
        }
        other => Err(mlua::Error::runtime(format!(
            "invalid replacement value (a {})",
            other.type_name()
        ))),
    }
}

fn string_functions(lua: &Lua, guard: &Arc<RunGuard>, raw: &Table) -> mlua::Result<()> {
    let g = guard.clone();
    let find = lua.create_function(
        move |lua, (s, p, init, plain): (LuaString, LuaString, Option<i64>, Option<Value>)| {
            let src = s.as_bytes();
            let mut budget = GuardBudget {
                guard: &g,
                lua,
                error: None,
            };
            let plain = plain.as_ref().is_some_and(truthy);
            match pattern::find(
                &src,
                &p.as_bytes(),
                init.unwrap_or(1),
                plain,
                true,
                &mut budget,
            ) {
                Ok(Some(f)) => {
                    let mut out = MultiValue::new();
                    out.push_back(Value::Integer(f.start as i64 + 1));
                    out.push_back(Value::Integer(f.end as i64));
                    out.extend(captures_value(lua, &src, &f.captures)?);
                    Ok(out)
                }
                Ok(None) => Ok(MultiValue::from_iter([Value::Nil])),
                Err(e) => Err(pattern_error(lua, e, &mut budget)),
            }
        },
    )?;
    raw.raw_set("find", find)?;

    let g = guard.clone();
    let matchf = lua.create_function(
        move |lua, (s, p, init): (LuaString, LuaString, Option<i64>)| {
            let src = s.as_bytes();
            let mut budget = GuardBudget {
                guard: &g,
                lua,
                error: None,
            };
            match pattern::find(
                &src,
                &p.as_bytes(),
                init.unwrap_or(1),
                false,
                false,
                &mut budget,
            ) {
                Ok(Some(f)) => captures_value(lua, &src, &f.captures),
                Ok(None) => Ok(MultiValue::from_iter([Value::Nil])),
                Err(e) => Err(pattern_error(lua, e, &mut budget)),
            }
        },
    )?;
    raw.raw_set("match", matchf)?;

    let g = guard.clone();
    let gmatch = lua.create_function(
        move |lua, (s, p, init): (LuaString, LuaString, Option<i64>)| {
            let g = g.clone();
            let mut state = GmatchState::new(s.as_bytes().len(), init.unwrap_or(1));
            lua.create_function_mut(move |lua, ()| {
                let src = s.as_bytes();
                let mut budget = GuardBudget {
                    guard: &g,
                    lua,
                    error: None,
                };
                match pattern::gmatch_next(&src, &p.as_bytes(), &mut state, &mut budget) {
                    Ok(Some(caps)) => captures_value(lua, &src, &caps),
                    Ok(None) => Ok(MultiValue::from_iter([Value::Nil])),
                    Err(e) => Err(pattern_error(lua, e, &mut budget)),
                }
            })
        },
    )?;
    raw.raw_set("gmatch", gmatch)?;

    let g = guard.clone();
    let gsub = lua.create_function(
        move |lua, (s, p, repl, max_n): (LuaString, LuaString, Value, Option<i64>)| {
            let src = s.as_bytes();
            let pat = p.as_bytes();
            let mut budget = GuardBudget {
                guard: &g,
                lua,
                error: None,
            };
            let mut callback_error: Option<mlua::Error> = None;
            let template;
            let mut dynamic;
            let replacement = match &repl {
                Value::String(t) => {
                    template = t.as_bytes().to_vec();
                    Replacement::Template(&template)
                }
                v @ (Value::Integer(_) | Value::Number(_)) => {
                    template = lua
                        .coerce_string(v.clone())?
                        .map(|s| s.as_bytes().to_vec())
                        .unwrap_or_default();
                    Replacement::Template(&template)
                }
                Value::Table(_) | Value::Function(_) => {
                    let src: &[u8] = &src;
                    dynamic = |caps: &[Capture]| {
                        let result = (|| {
                            let v = match &repl {
                                Value::Table(t) => {
                                    t.get::<Value>(capture_value(lua, src, caps[0])?)?
                                }
                                Value::Function(f) => {
                                    f.call::<Value>(captures_value(lua, src, caps)?)?
                                }
                                _ => unreachable!("checked above"),
                            };
                            replacement_bytes(lua, v)
                        })();
                        result.map_err(|e| {
                            callback_error = Some(e);
                            PatternError::Budget("replacement failed".into())
                        })
                    };
                    Replacement::Dynamic(&mut dynamic)
                }
                other => {
                    return Err(mlua::Error::runtime(format!(
                        "bad argument #3 to 'gsub' (string/function/table expected, got {})",
                        other.type_name()
                    )))
                }
            };
            let result = pattern::gsub(&src, &pat, replacement, max_n, g.max_string, &mut budget);
            if let Some(e) = callback_error {
                return Err(e);
            }
            match result {
                Ok((None, n)) => Ok((Value::String(s.clone()), n)),
                Ok((Some(out), n)) => Ok((Value::String(lua.create_string(out)?), n)),
                Err(e) => Err(pattern_error(lua, e, &mut budget)),
            }
        },
    )?;
    raw.raw_set("gsub", gsub)?;

    let g = guard.clone();
    // C's string.rep loops n times even when nothing is copied (rep("", 1e15)).
    let rep = lua.create_function(
        move |lua, (s, n, sep): (LuaString, i64, Option<LuaString>)| {
            if n <= 0 {
                return lua.create_string("");
            }
            let s = s.as_bytes();
            let sep = sep.as_ref().map(|x| x.as_bytes());
            let sep: &[u8] = sep.as_deref().unwrap_or(b"");
            let n = n as u64;
            let total = (s.len() as u64)
                .checked_mul(n)
                .and_then(|a| (sep.len() as u64).checked_mul(n - 1).map(|b| (a, b)))
                .and_then(|(a, b)| a.checked_add(b));
            let total = match total {
                // Nothing to copy: answer at once instead of looping n times.
                Some(0) => return lua.create_string(""),
                Some(t) if t <= g.max_string as u64 => t as usize,
                _ => return Err(located_error(lua, "resulting string too large")),
            };
            g.charge(lua, (total / 64) as u64)?;
            let mut out = Vec::with_capacity(total);
            for i in 0..n {
                out.extend_from_slice(&s);
                if i + 1 < n {
                    out.extend_from_slice(sep);
                }
            }
            lua.create_string(out)
        },
    )?;
    raw.raw_set("rep", rep)?;

    let g = guard.clone();
    raw.raw_set(
        "aborted",
        lua.create_function(move |_, ()| Ok(g.aborted()))?,
    )?;
    Ok(())
}

/// Creates the Lua state: only the safe libraries are loaded, the frozen global table is
/// built by the prelude, and the instruction hook is installed for good. Returns the
/// prelude's per-run entry point.
pub(crate) fn new_state(guard: &Arc<RunGuard>) -> mlua::Result<(Lua, Function)> {
    let lua = Lua::new_with(
        StdLib::STRING | StdLib::TABLE | StdLib::MATH | StdLib::UTF8,
        LuaOptions::new(),
    )?;
    let globals = lua.globals();
    let raw = lua.create_table()?;
    for pair in globals.pairs::<Value, Value>() {
        let (k, v) = pair?;
        raw.raw_set(k, v)?;
    }
    string_functions(&lua, guard, &raw)?;

    let prelude = lua
        .load(include_str!("prelude.lua"))
        .set_name("=prelude")
        .set_mode(mlua::chunk::ChunkMode::Text)
        // An empty environment: a helper that read a global by mistake fails loudly.
        .set_environment(lua.create_table()?)
        .into_function()?;
    let (_frozen, runner): (Table, Function) = prelude.call(raw)?;

    // Nothing reads the real globals any more; empty them anyway so a mistake elsewhere
    // cannot hand out load, dofile or collectgarbage.
    let keys: Vec<Value> = globals
        .pairs::<Value, Value>()
        .map(|p| p.map(|(k, _)| k))
        .collect::<mlua::Result<_>>()?;
    for k in keys {
        globals.raw_set(k, Value::Nil)?;
    }

    let g = guard.clone();
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(HOOK_EVERY),
        move |lua, _debug| {
            g.charge(lua, HOOK_EVERY as u64)?;
            Ok(VmState::Continue)
        },
    )?;
    // Generational collection suits this load: every run leaves only young garbage.
    lua.gc_set_mode(mlua::state::GcMode::Generational(Default::default()));
    Ok((lua, runner))
}
