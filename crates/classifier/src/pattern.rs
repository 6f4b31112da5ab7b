//! Lua 5.4 pattern matching with a step budget.
//!
//! Why this exists: Lua's own `string.find`/`match`/`gmatch`/`gsub` are C functions, and the
//! instruction hook never fires inside C, so a backtracking pattern such as
//! `("a"):rep(5000):find(".-.-.-.-b")` would run for minutes under any instruction limit
//! (SPIKES.md measured 1.24 s under a 1000-instruction limit). This is a faithful port of the
//! matcher in Lua 5.4's `lstrlib.c` that counts its steps and asks a [`Budget`] every few
//! thousand steps whether it may go on, so pattern work is charged to the run's instruction
//! limit and wall-clock bound like any other work. The engine installs these functions in
//! place of the C ones (see `sandbox.rs`).

/// Maximum number of captures, as in Lua (`LUA_MAXCAPTURES`).
const MAX_CAPTURES: usize = 32;
/// Recursion bound of the matcher, as in Lua (`MAXCCALLS`): keeps the Rust stack small.
const MAX_DEPTH: usize = 200;
/// How many steps run between two budget checks.
const CHECK_EVERY: u64 = 4096;

const L_ESC: u8 = b'%';
const SPECIALS: &[u8] = b"^$*+?.([%-";

/// Why a pattern operation stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The pattern (or replacement string) is malformed; the text is Lua's message.
    #[error("{0}")]
    Malformed(String),
    /// The budget refused more steps; the text says which limit.
    #[error("{0}")]
    Budget(String),
}

/// Lets the matcher spend steps; returning an error stops the match.
pub trait Budget {
    fn charge(&mut self, steps: u64) -> Result<(), String>;
}

/// A budget of a fixed number of steps, for tests and callers outside a run.
pub struct StepBudget(pub u64);

impl Budget for StepBudget {
    fn charge(&mut self, steps: u64) -> Result<(), String> {
        if steps > self.0 {
            self.0 = 0;
            Err("pattern matching exceeded its step budget".into())
        } else {
            self.0 -= steps;
            Ok(())
        }
    }
}

/// One capture of a successful match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// Byte range of the subject.
    Span(usize, usize),
    /// A position capture `()`: a 1-based index into the subject.
    Position(usize),
}

#[derive(Clone, Copy)]
enum CapLen {
    Unfinished,
    Position,
    Len(usize),
}

struct MatchState<'a, 'b> {
    src: &'a [u8],
    pat: &'a [u8],
    depth: usize,
    level: usize,
    capture: [(usize, CapLen); MAX_CAPTURES],
    steps: u64,
    budget: &'b mut dyn Budget,
}

type R<T> = Result<T, PatternError>;

fn malformed<T>(msg: &str) -> R<T> {
    Err(PatternError::Malformed(msg.to_string()))
}

impl<'a, 'b> MatchState<'a, 'b> {
    fn new(src: &'a [u8], pat: &'a [u8], budget: &'b mut dyn Budget) -> Self {
        MatchState {
            src,
            pat,
            depth: MAX_DEPTH,
            level: 0,
            capture: [(0, CapLen::Unfinished); MAX_CAPTURES],
            steps: 0,
            budget,
        }
    }

    fn reprep(&mut self) {
        self.level = 0;
        self.depth = MAX_DEPTH;
    }

    #[inline]
    fn step(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps.is_multiple_of(CHECK_EVERY) {
            self.budget
                .charge(CHECK_EVERY)
                .map_err(PatternError::Budget)?;
        }
        Ok(())
    }

    /// Charges the steps not yet charged; called once an operation ends.
    fn settle(&mut self) -> R<()> {
        let rest = self.steps % CHECK_EVERY;
        self.steps -= rest;
        self.budget.charge(rest).map_err(PatternError::Budget)
    }

    /// Pattern byte at `i`, or 0 past the end (the C code reads the terminating NUL).
    #[inline]
    fn p(&self, i: usize) -> u8 {
        self.pat.get(i).copied().unwrap_or(0)
    }

    fn class_end(&self, mut p: usize) -> R<usize> {
        let c = self.p(p);
        p += 1;
        if c == L_ESC {
            if p >= self.pat.len() {
                return malformed("malformed pattern (ends with '%')");
            }
            return Ok(p + 1);
        }
        if c == b'[' {
            if self.p(p) == b'^' {
                p += 1;
            }
            loop {
                if p >= self.pat.len() {
                    return malformed("malformed pattern (missing ']')");
                }
                let c = self.p(p);
                p += 1;
                if c == L_ESC && p < self.pat.len() {
                    p += 1;
                }
                if self.p(p) == b']' {
                    break;
                }
            }
            return Ok(p + 1);
        }
        Ok(p)
    }

    fn single_match(&self, s: usize, p: usize, ep: usize) -> bool {
        if s >= self.src.len() {
            return false;
        }
        let c = self.src[s];
        match self.p(p) {
            b'.' => true,
            L_ESC => match_class(c, self.p(p + 1)),
            b'[' => match_bracket_class(c, self.pat, p, ep - 1),
            pc => pc == c,
        }
    }

    fn match_balance(&mut self, s: usize, p: usize) -> R<Option<usize>> {
        if p + 1 >= self.pat.len() {
            return malformed("malformed pattern (missing arguments to '%b')");
        }
        if s >= self.src.len() || self.src[s] != self.pat[p] {
            return Ok(None);
        }
        let (b, e) = (self.pat[p], self.pat[p + 1]);
        let mut cont = 1;
        let mut s = s + 1;
        while s < self.src.len() {
            self.step()?;
            let c = self.src[s];
            if c == e {
                cont -= 1;
                if cont == 0 {
                    return Ok(Some(s + 1));
                }
            } else if c == b {
                cont += 1;
            }
            s += 1;
        }
        Ok(None)
    }

    fn max_expand(&mut self, s: usize, p: usize, ep: usize) -> R<Option<usize>> {
        let mut i = 0usize;
        while self.single_match(s + i, p, ep) {
            self.step()?;
            i += 1;
        }
        loop {
            if let Some(res) = self.do_match(s + i, ep + 1)? {
                return Ok(Some(res));
            }
            if i == 0 {
                return Ok(None);
            }
            i -= 1;
        }
    }

    fn min_expand(&mut self, mut s: usize, p: usize, ep: usize) -> R<Option<usize>> {
        loop {
            if let Some(res) = self.do_match(s, ep + 1)? {
                return Ok(Some(res));
            }
            if self.single_match(s, p, ep) {
                s += 1;
            } else {
                return Ok(None);
            }
        }
    }

    fn start_capture(&mut self, s: usize, p: usize, what: CapLen) -> R<Option<usize>> {
        if self.level >= MAX_CAPTURES {
            return malformed("too many captures");
        }
        self.capture[self.level] = (s, what);
        self.level += 1;
        let res = self.do_match(s, p)?;
        if res.is_none() {
            self.level -= 1;
        }
        Ok(res)
    }

    fn end_capture(&mut self, s: usize, p: usize) -> R<Option<usize>> {
        let l = self.capture_to_close()?;
        self.capture[l].1 = CapLen::Len(s - self.capture[l].0);
        let res = self.do_match(s, p)?;
        if res.is_none() {
            self.capture[l].1 = CapLen::Unfinished;
        }
        Ok(res)
    }

    fn capture_to_close(&self) -> R<usize> {
        (0..self.level)
            .rev()
            .find(|&l| matches!(self.capture[l].1, CapLen::Unfinished))
            .map_or_else(|| malformed("invalid pattern capture"), Ok)
    }

    fn check_capture(&self, l: u8) -> R<usize> {
        let l = l as i32 - b'1' as i32;
        if l < 0
            || l as usize >= self.level
            || matches!(self.capture[l as usize].1, CapLen::Unfinished)
        {
            return Err(PatternError::Malformed(format!(
                "invalid capture index %{}",
                l + 1
            )));
        }
        Ok(l as usize)
    }

    fn match_capture(&mut self, s: usize, l: u8) -> R<Option<usize>> {
        let l = self.check_capture(l)?;
        let (init, len) = match self.capture[l] {
            (init, CapLen::Len(len)) => (init, len),
            // In C a position capture's length is (size_t)-2, so a back-reference to it
            // never matches.
            _ => return Ok(None),
        };
        self.steps += len as u64;
        if self.src.len() - s >= len && self.src[init..init + len] == self.src[s..s + len] {
            Ok(Some(s + len))
        } else {
            Ok(None)
        }
    }

    fn do_match(&mut self, mut s: usize, mut p: usize) -> R<Option<usize>> {
        if self.depth == 0 {
            return malformed("pattern too complex");
        }
        self.depth -= 1;
        let result = loop {
            self.step()?;
            if p >= self.pat.len() {
                break Some(s);
            }
            match self.pat[p] {
                b'(' => {
                    break if self.p(p + 1) == b')' {
                        self.start_capture(s, p + 2, CapLen::Position)?
                    } else {
                        self.start_capture(s, p + 1, CapLen::Unfinished)?
                    };
                }
                b')' => break self.end_capture(s, p + 1)?,
                b'$' if p + 1 == self.pat.len() => {
                    break (s == self.src.len()).then_some(s);
                }
                L_ESC if self.p(p + 1) == b'b' => match self.match_balance(s, p + 2)? {
                    Some(ns) => {
                        s = ns;
                        p += 4;
                        continue;
                    }
                    None => break None,
                },
                L_ESC if self.p(p + 1) == b'f' => {
                    p += 2;
                    if self.p(p) != b'[' {
                        return malformed("missing '[' after '%f' in pattern");
                    }
                    let ep = self.class_end(p)?;
                    let prev = if s == 0 { 0 } else { self.src[s - 1] };
                    let cur = self.src.get(s).copied().unwrap_or(0);
                    if !match_bracket_class(prev, self.pat, p, ep - 1)
                        && match_bracket_class(cur, self.pat, p, ep - 1)
                    {
                        p = ep;
                        continue;
                    }
                    break None;
                }
                L_ESC if self.p(p + 1).is_ascii_digit() => {
                    match self.match_capture(s, self.p(p + 1))? {
                        Some(ns) => {
                            s = ns;
                            p += 2;
                            continue;
                        }
                        None => break None,
                    }
                }
                _ => {
                    let ep = self.class_end(p)?;
                    let suffix = self.p(ep);
                    if !self.single_match(s, p, ep) {
                        if matches!(suffix, b'*' | b'?' | b'-') {
                            p = ep + 1;
                            continue;
                        }
                        break None;
                    }
                    match suffix {
                        b'?' => {
                            if let Some(res) = self.do_match(s + 1, ep + 1)? {
                                break Some(res);
                            }
                            p = ep + 1;
                            continue;
                        }
                        b'+' => break self.max_expand(s + 1, p, ep)?,
                        b'*' => break self.max_expand(s, p, ep)?,
                        b'-' => break self.min_expand(s, p, ep)?,
                        _ => {
                            s += 1;
                            p = ep;
                            continue;
                        }
                    }
                }
            }
        };
        self.depth += 1;
        Ok(result)
    }

    fn get_capture(&self, i: usize, s: usize, e: usize) -> R<Capture> {
        if i >= self.level {
            if i != 0 {
                return Err(PatternError::Malformed(format!(
                    "invalid capture index %{}",
                    i + 1
                )));
            }
            return Ok(Capture::Span(s, e));
        }
        match self.capture[i] {
            (_, CapLen::Unfinished) => malformed("unfinished capture"),
            (init, CapLen::Position) => Ok(Capture::Position(init + 1)),
            (init, CapLen::Len(len)) => Ok(Capture::Span(init, init + len)),
        }
    }

    /// The captures of a match at `s..e`; the whole match when the pattern has none and
    /// `whole` is set (find returns positions instead, so it passes false).
    fn captures(&self, s: usize, e: usize, whole: bool) -> R<Vec<Capture>> {
        let n = if self.level == 0 && whole {
            1
        } else {
            self.level
        };
        (0..n).map(|i| self.get_capture(i, s, e)).collect()
    }
}

fn match_class(c: u8, cl: u8) -> bool {
    let res = match cl.to_ascii_lowercase() {
        b'a' => c.is_ascii_alphabetic(),
        b'c' => c.is_ascii_control(),
        b'd' => c.is_ascii_digit(),
        b'g' => c.is_ascii_graphic(),
        b'l' => c.is_ascii_lowercase(),
        b'p' => c.is_ascii_punctuation(),
        // C's isspace also counts the vertical tab, which Rust's is_ascii_whitespace does not.
        b's' => c.is_ascii_whitespace() || c == 0x0b,
        b'u' => c.is_ascii_uppercase(),
        b'w' => c.is_ascii_alphanumeric(),
        b'x' => c.is_ascii_hexdigit(),
        _ => return cl == c,
    };
    if cl.is_ascii_uppercase() {
        !res
    } else {
        res
    }
}

/// `p` points at the `[`, `ec` at the closing `]`.
fn match_bracket_class(c: u8, pat: &[u8], mut p: usize, ec: usize) -> bool {
    let at = |i: usize| pat.get(i).copied().unwrap_or(0);
    let mut sig = true;
    if at(p + 1) == b'^' {
        sig = false;
        p += 1;
    }
    loop {
        p += 1;
        if p >= ec {
            break;
        }
        if at(p) == L_ESC {
            p += 1;
            if match_class(c, at(p)) {
                return sig;
            }
        } else if at(p + 1) == b'-' && p + 2 < ec {
            p += 2;
            if at(p - 2) <= c && c <= at(p) {
                return sig;
            }
        } else if at(p) == c {
            return sig;
        }
    }
    !sig
}

/// Lua's `posrelatI`: a 1-based start position from a possibly negative index.
pub fn start_index(init: i64, len: usize) -> usize {
    if init > 0 {
        init as usize
    } else if init == 0 || init < -(len as i64) {
        1
    } else {
        (len as i64 + init + 1) as usize
    }
}

/// What `string.find` (`find = true`) or `string.match` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// 0-based start and exclusive end of the whole match.
    pub start: usize,
    pub end: usize,
    pub captures: Vec<Capture>,
}

/// `string.find` (with `find`) and `string.match` (without).
pub fn find(
    src: &[u8],
    pat: &[u8],
    init: i64,
    plain: bool,
    find: bool,
    budget: &mut dyn Budget,
) -> R<Option<Found>> {
    let init = start_index(init, src.len()) - 1;
    if init > src.len() {
        return Ok(None);
    }
    if find && (plain || !pat.iter().any(|c| SPECIALS.contains(c))) {
        // C's plain search is naive, O(n·m) on inputs like ("a"):rep(1e6) and
        // ("a"):rep(1e5).."b"; memmem is linear. Charge it so huge subjects still count.
        budget
            .charge((src.len() - init) as u64 / 16)
            .map_err(PatternError::Budget)?;
        let pos = memchr::memmem::find(&src[init..], pat);
        return Ok(pos.map(|i| Found {
            start: init + i,
            end: init + i + pat.len(),
            captures: Vec::new(),
        }));
    }
    let (anchor, pat) = match pat.first() {
        Some(b'^') => (true, &pat[1..]),
        _ => (false, pat),
    };
    let mut ms = MatchState::new(src, pat, budget);
    let mut s1 = init;
    loop {
        ms.reprep();
        if let Some(e) = ms.do_match(s1, 0)? {
            let captures = ms.captures(s1, e, !find)?;
            ms.settle()?;
            return Ok(Some(Found {
                start: s1,
                end: e,
                captures,
            }));
        }
        s1 += 1;
        if anchor || s1 > src.len() {
            break;
        }
    }
    ms.settle()?;
    Ok(None)
}

/// The state of a `string.gmatch` iterator between calls.
#[derive(Debug, Clone)]
pub struct GmatchState {
    pub pos: usize,
    pub last_match: Option<usize>,
}

impl GmatchState {
    pub fn new(src_len: usize, init: i64) -> Self {
        let mut pos = start_index(init, src_len) - 1;
        if pos > src_len {
            pos = src_len + 1;
        }
        GmatchState {
            pos,
            last_match: None,
        }
    }
}

/// One step of a `string.gmatch` iterator: the captures of the next match, if any.
pub fn gmatch_next(
    src: &[u8],
    pat: &[u8],
    state: &mut GmatchState,
    budget: &mut dyn Budget,
) -> R<Option<Vec<Capture>>> {
    let mut ms = MatchState::new(src, pat, budget);
    let mut s = state.pos;
    while s <= src.len() {
        ms.reprep();
        if let Some(e) = ms.do_match(s, 0)? {
            if Some(e) != state.last_match {
                state.pos = e;
                state.last_match = Some(e);
                let caps = ms.captures(s, e, true)?;
                ms.settle()?;
                return Ok(Some(caps));
            }
        }
        s += 1;
    }
    state.pos = s;
    ms.settle()?;
    Ok(None)
}

/// Asked per match of `string.gsub` with its captures: `Ok(None)` keeps the match.
pub type ReplaceFn<'r> = dyn FnMut(&[Capture]) -> Result<Option<Vec<u8>>, PatternError> + 'r;

/// What replaces a match in `string.gsub`.
pub enum Replacement<'r> {
    /// A replacement string with `%0`–`%9` and `%%`.
    Template(&'r [u8]),
    /// Asked per match with its captures: `Ok(None)` keeps the match unchanged.
    Dynamic(&'r mut ReplaceFn<'r>),
}

/// `string.gsub`: the new string (`None` when nothing changed) and the number of matches.
/// `max_len` bounds the result, which is built outside the Lua allocator's memory limit.
pub fn gsub(
    src: &[u8],
    pat: &[u8],
    mut repl: Replacement<'_>,
    max_n: Option<i64>,
    max_len: usize,
    budget: &mut dyn Budget,
) -> R<(Option<Vec<u8>>, i64)> {
    let (anchor, pat) = match pat.first() {
        Some(b'^') => (true, &pat[1..]),
        _ => (false, pat),
    };
    let max_n = max_n.unwrap_or(src.len() as i64 + 1);
    let mut ms = MatchState::new(src, pat, budget);
    let mut out: Vec<u8> = Vec::new();
    let mut changed = false;
    let mut n = 0i64;
    let mut s = 0usize;
    let mut last_match: Option<usize> = None;
    let too_long = || PatternError::Budget("string.gsub: resulting string too large".into());
    while n < max_n {
        ms.reprep();
        match ms.do_match(s, 0)? {
            Some(e) if Some(e) != last_match => {
                n += 1;
                match &mut repl {
                    Replacement::Template(t) => {
                        add_template(&ms, &mut out, t, s, e)?;
                        changed = true;
                    }
                    Replacement::Dynamic(f) => {
                        let caps = ms.captures(s, e, true)?;
                        match f(&caps)? {
                            Some(v) => {
                                out.extend_from_slice(&v);
                                changed = true;
                            }
                            None => out.extend_from_slice(&src[s..e]),
                        }
                    }
                }
                if out.len() > max_len {
                    return Err(too_long());
                }
                ms.steps += (e - s) as u64;
                s = e;
                last_match = Some(e);
            }
            _ if s < src.len() => {
                out.push(src[s]);
                s += 1;
            }
            _ => break,
        }
        if anchor {
            break;
        }
    }
    ms.settle()?;
    if !changed {
        return Ok((None, n));
    }
    out.extend_from_slice(&src[s..]);
    if out.len() > max_len {
        return Err(too_long());
    }
    Ok((Some(out), n))
}

fn add_template(ms: &MatchState, out: &mut Vec<u8>, t: &[u8], s: usize, e: usize) -> R<()> {
    let mut i = 0;
    while i < t.len() {
        let c = t[i];
        i += 1;
        if c != L_ESC {
            out.push(c);
            continue;
        }
        let d = t.get(i).copied().unwrap_or(0);
        i += 1;
        if d == L_ESC {
            out.push(L_ESC);
        } else if d.is_ascii_digit() {
            let cap = if d == b'0' {
                Capture::Span(s, e)
            } else {
                ms.get_capture((d - b'1') as usize, s, e)?
            };
            match cap {
                Capture::Span(a, b) => out.extend_from_slice(&ms.src[a..b]),
                Capture::Position(p) => out.extend_from_slice(p.to_string().as_bytes()),
            }
        } else {
            return malformed("invalid use of '%' in replacement string");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(src: &str, pat: &str) -> Option<Vec<String>> {
        let f = find(
            src.as_bytes(),
            pat.as_bytes(),
            1,
            false,
            false,
            &mut StepBudget(1_000_000),
        )
        .unwrap()?;
        Some(
            f.captures
                .iter()
                .map(|c| match *c {
                    Capture::Span(a, b) => src[a..b].to_string(),
                    Capture::Position(p) => format!("@{p}"),
                })
                .collect(),
        )
    }

    fn sub(src: &str, pat: &str, repl: &str) -> (String, i64) {
        let (out, n) = gsub(
            src.as_bytes(),
            pat.as_bytes(),
            Replacement::Template(repl.as_bytes()),
            None,
            1 << 20,
            &mut StepBudget(1_000_000),
        )
        .unwrap();
        (
            String::from_utf8(out.unwrap_or_else(|| src.as_bytes().to_vec())).unwrap(),
            n,
        )
    }

    #[test]
    fn match_agrees_with_lua_semantics() {
        let cases: &[(&str, &str, Option<&[&str]>)] = &[
            ("hello world", "o w", Some(&["o w"])),
            ("hello world", "(%w+) (%w+)", Some(&["hello", "world"])),
            (
                "CRITICAL: disk full",
                "^(%u+):%s*(.*)$",
                Some(&["CRITICAL", "disk full"]),
            ),
            ("  x", "^x", None),
            ("key = value", "(%w+)%s*=%s*(%w+)", Some(&["key", "value"])),
            ("f(a(b)c)d", "%b()", Some(&["(a(b)c)"])),
            ("THE (quick) fox", "%f[%a]%a+", Some(&["THE"])),
            ("abc", "()b()", Some(&["@2", "@3"])),
            ("aaa", "a-b", None),
            ("aaab", "a-b", Some(&["aaab"])),
            ("[x]", "[%[]", Some(&["["])),
            ("x-y", "[a-z]%-[a-z]", Some(&["x-y"])),
            ("abcabc", "(abc)%1", Some(&["abc"])),
            ("12.5%", "(%d+%.?%d*)%%", Some(&["12.5"])),
            ("", "^$", Some(&[""])),
            ("ab", "[^a]", Some(&["b"])),
            ("a\u{b}b", "%s", Some(&["\u{b}"])),
        ];
        for (src, pat, want) in cases {
            let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(m(src, pat), want, "match({src:?}, {pat:?})");
        }
    }

    #[test]
    fn find_positions_init_and_plain() {
        let b = &mut StepBudget(1_000_000);
        let f = find(b"hello", b"l+", 1, false, true, b).unwrap().unwrap();
        assert_eq!((f.start, f.end), (2, 4));
        let f = find(b"a.b", b".", 1, true, true, b).unwrap().unwrap();
        assert_eq!((f.start, f.end), (1, 2));
        let f = find(b"abab", b"ab", -2, false, true, b).unwrap().unwrap();
        assert_eq!(f.start, 2);
        assert_eq!(find(b"abc", b"a", 10, false, true, b).unwrap(), None);
        let f = find(b"abc", b"", 4, false, true, b).unwrap().unwrap();
        assert_eq!((f.start, f.end), (3, 3));
    }

    #[test]
    fn gsub_agrees_with_lua_semantics() {
        assert_eq!(sub("hello world", "o", "0"), ("hell0 w0rld".into(), 2));
        assert_eq!(
            sub("hello world", "(%w+)", "<%1>"),
            ("<hello> <world>".into(), 2)
        );
        assert_eq!(sub("abc", "", "-"), ("-a-b-c-".into(), 4));
        assert_eq!(sub("abc", "^a", "x"), ("xbc".into(), 1));
        assert_eq!(sub("abc", "%w", "%0%0"), ("aabbcc".into(), 3));
        assert_eq!(sub("50%", "%%", "%%%%"), ("50%%".into(), 1));
        assert_eq!(sub("abc", "x*", "-"), ("-a-b-c-".into(), 4));
        let err = gsub(
            b"abc",
            b"b",
            Replacement::Template(b"%z"),
            None,
            100,
            &mut StepBudget(1000),
        )
        .unwrap_err();
        assert!(err.to_string().contains("invalid use of '%'"));
    }

    #[test]
    fn gmatch_iterates_like_lua() {
        let src = b"one two  three";
        let mut st = GmatchState::new(src.len(), 1);
        let mut words = vec![];
        while let Some(c) = gmatch_next(src, b"%a+", &mut st, &mut StepBudget(10_000)).unwrap() {
            if let Capture::Span(a, b) = c[0] {
                words.push(String::from_utf8(src[a..b].to_vec()).unwrap());
            }
        }
        assert_eq!(words, ["one", "two", "three"]);
        // An empty-matching pattern must not loop forever on the same position.
        let mut st = GmatchState::new(3, 1);
        let mut n = 0;
        while gmatch_next(b"abc", b"x*", &mut st, &mut StepBudget(10_000))
            .unwrap()
            .is_some()
        {
            n += 1;
        }
        assert_eq!(n, 4);
    }

    #[test]
    fn malformed_patterns_are_errors_not_panics() {
        for pat in ["%", "[a", "(a", "a)", "%b", "%f", "%1", "(()", "[%"] {
            let r = find(
                b"abc(",
                pat.as_bytes(),
                1,
                false,
                false,
                &mut StepBudget(1000),
            );
            assert!(
                matches!(r, Err(PatternError::Malformed(_))),
                "{pat:?} gave {r:?}"
            );
        }
    }

    #[test]
    fn backtracking_pattern_exhausts_the_budget_quickly() {
        let src = "a".repeat(20_000);
        let t = std::time::Instant::now();
        let r = find(
            src.as_bytes(),
            b".-.-.-.-.-b",
            1,
            false,
            true,
            &mut StepBudget(200_000),
        );
        assert!(matches!(r, Err(PatternError::Budget(_))), "{r:?}");
        // Generous: this runs unoptimized; the point is "stops", not "how fast".
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
    }
}
