mod common;
use common::*;
use prophasis_model::Classification;

#[test]
fn smoke() {
    let mut e = engine();
    let out = run(
        &mut e,
        "if arrayAvg(values) > 5 then return 'major' end return 'ok'",
        &nums(&[1.0, 10.0, 20.0]),
    );
    assert_eq!(out.classification, Classification::Major, "{out:?}");
    let out = run(&mut e, "local x = nil\nreturn x > 1", &nums(&[1.0]));
    println!("{out:?}");
    let out = run(&mut e, "while true do end", &nums(&[1.0]));
    println!("{out:?}");
    let out = run(
        &mut e,
        "local t = {} for i=1,1e9 do t[i] = i end",
        &nums(&[1.0]),
    );
    println!("{out:?}");
    let out = run(
        &mut e,
        "return ('a'):rep(30000):find('.-.-.-.-b')",
        &nums(&[1.0]),
    );
    println!("{out:?}");
    let out = run(&mut e, "return os.execute('ls')", &nums(&[1.0]));
    println!("{out:?}");
}
