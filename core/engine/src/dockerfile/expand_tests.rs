use super::*;
use std::collections::HashMap;

/// The variables the tests see: `A=alpha`, `E=` (set, empty), `L="x  y"`,
/// `P=a/b/c`, `Q=abcb`; everything else unset.
fn env(name: &str) -> Option<String> {
    let vars: HashMap<&str, &str> = [
        ("A", "alpha"),
        ("E", ""),
        ("L", "x  y"),
        ("P", "a/b/c"),
        ("Q", "abcb"),
    ]
    .into_iter()
    .collect();
    vars.get(name).map(|v| v.to_string())
}

fn word(s: &str) -> Result<String, String> {
    expand_word(s, &env, '\\')
}

fn ok(s: &str) -> String {
    word(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn words(s: &str) -> Vec<String> {
    expand_words(s, &env, '\\').unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

#[test]
fn plain_variables() {
    assert_eq!(ok("$A"), "alpha");
    assert_eq!(ok("${A}"), "alpha");
    assert_eq!(ok("x$A-y"), "xalpha-y");
    assert_eq!(ok("x${A}y"), "xalphay");
    assert_eq!(ok("$Ay"), "", "the name runs on: $Ay is unset");
    assert_eq!(ok("[$NOPE]"), "[]");
    assert_eq!(ok("${NOPE}"), "");
    assert_eq!(ok("$1x"), "x", "a digit run is a (positional, unset) name");
}

#[test]
fn dollar_without_a_name_stays() {
    assert_eq!(ok("a$ b"), "a$ b");
    assert_eq!(ok("$/x"), "$/x");
    assert_eq!(ok("cost: 5$"), "cost: 5$");
    // docker's special parameters are names, never set in a Dockerfile.
    assert_eq!(ok("a$@b"), "ab");
}

#[test]
fn default_and_alternative_forms() {
    assert_eq!(ok("${A:-d}"), "alpha");
    assert_eq!(ok("${NOPE:-d}"), "d");
    assert_eq!(ok("${E:-d}"), "d", ":- treats empty as unset");
    assert_eq!(ok("${E-d}"), "", "- only replaces unset");
    assert_eq!(ok("${NOPE-d}"), "d");
    assert_eq!(ok("${A:+alt}"), "alt");
    assert_eq!(ok("${E:+alt}"), "");
    assert_eq!(ok("${E+alt}"), "alt");
    assert_eq!(ok("${NOPE+alt}"), "");
    // The words of a modifier are themselves expanded and unquoted.
    assert_eq!(ok("${NOPE:-$A}"), "alpha");
    assert_eq!(ok("${NOPE:-\"x  y\"}"), "x  y");
    assert_eq!(ok("${NOPE:-${A:+nested}}"), "nested");
    assert_eq!(ok("${NOPE:-a\\}b}"), "a}b");
}

#[test]
fn required_variables() {
    assert_eq!(ok("${A:?set it}"), "alpha");
    assert_eq!(ok("${E?set it}"), "", "? accepts an empty value");
    let e = word("${NOPE:?set NOPE first}").unwrap_err();
    assert!(e.contains("NOPE: set NOPE first"), "{e}");
    let e = word("${E:?}").unwrap_err();
    assert!(e.contains("E: is not allowed to be empty"), "{e}");
    let e = word("${NOPE?}").unwrap_err();
    assert!(e.contains("NOPE: is not allowed to be unset"), "{e}");
}

#[test]
fn prefix_suffix_and_replacement() {
    assert_eq!(ok("${P#*/}"), "b/c");
    assert_eq!(ok("${P##*/}"), "c");
    assert_eq!(ok("${P%/*}"), "a/b");
    assert_eq!(ok("${P%%/*}"), "a");
    assert_eq!(ok("${P#x}"), "a/b/c", "no match leaves the value");
    assert_eq!(ok("${Q/b/X}"), "aXcb");
    assert_eq!(ok("${Q//b/X}"), "aXcX");
    assert_eq!(ok("${Q//b?/-}"), "a-b");
}

#[test]
fn quotes() {
    assert_eq!(ok("'$A'"), "$A");
    assert_eq!(ok("\"$A\""), "alpha");
    assert_eq!(ok("\"a  b\""), "a  b");
    assert_eq!(ok(r#""say \"hi\"""#), r#"say "hi""#);
    assert_eq!(ok(r#""\$A""#), "$A");
    assert_eq!(
        ok(r#""a\b""#),
        r"a\b",
        "other escapes stay inside double quotes"
    );
    assert_eq!(ok(r#""a\\b""#), r"a\b");
    assert_eq!(ok(r"'a\b'"), r"a\b");
    assert_eq!(ok(r#"x"y"'z'"#), "xyz");
    assert!(word("'open").unwrap_err().contains("single-quote"));
    assert!(word("\"open").unwrap_err().contains("double-quote"));
}

#[test]
fn escapes_outside_quotes() {
    assert_eq!(ok(r"\$A"), "$A");
    assert_eq!(ok(r"a\ b"), "a b");
    assert_eq!(ok(r#"\"x\""#), r#""x""#);
    assert_eq!(ok(r"a\\b"), r"a\b");
    assert_eq!(ok(r"end\"), "end", "a trailing escape is dropped");
}

#[test]
fn backtick_escape() {
    let w = |s: &str| expand_word(s, &env, '`').unwrap();
    assert_eq!(w(r"C:\path\$A"), r"C:\path\alpha", "backslash is literal");
    assert_eq!(w("`$A"), "$A");
    assert_eq!(w("a` b"), "a b");
    assert_eq!(w("\"q`\"q\""), "q\"q");
}

#[test]
fn syntax_errors() {
    for bad in ["${A", "${", "${}", "${:-x}", "${A:x}", "${A:-x", "${A/x"] {
        assert!(word(bad).is_err(), "{bad:?} should be refused");
    }
    assert!(word("${}").unwrap_err().contains("bad substitution"));
    assert!(word("${A").unwrap_err().contains("missing '}'"));
    assert!(word("${A*}").unwrap_err().contains("unsupported modifier"));
}

#[test]
fn words_split_on_unquoted_blanks() {
    assert_eq!(words("a  b \"c d\" 'e f'"), ["a", "b", "c d", "e f"]);
    assert_eq!(words("$L"), ["x", "y"], "blanks from a value split too");
    assert_eq!(words("\"$L\""), ["x  y"]);
    assert_eq!(words("a\"b c\"d"), ["ab cd"]);
    assert_eq!(words(r"a\ b c"), ["a b", "c"]);
    assert_eq!(words("pre$L"), ["prex", "y"]);
    assert_eq!(words("  "), Vec::<String>::new());
    assert_eq!(words("\"\" x"), ["x"], "docker drops empty words");
    // expand_word keeps what expand_words splits.
    assert_eq!(ok("$L z"), "x  y z");
}

#[test]
fn pairs_new_and_legacy_forms() {
    let p = |s: &str| split_pairs(s, '\\').unwrap();
    let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert_eq!(
        p(r#"A=1 B="two words" C=x\ y D='$A'"#),
        [
            kv("A", "1"),
            kv("B", "\"two words\""),
            kv("C", r"x\ y"),
            kv("D", "'$A'")
        ]
    );
    assert_eq!(p("A=x=y"), [kv("A", "x=y")]);
    assert_eq!(p("A= B=\"\""), [kv("A", ""), kv("B", "\"\"")]);
    // Legacy: the first word has no `=`, the rest of the line is the value.
    assert_eq!(p("A one  two"), [kv("A", "one  two")]);
    assert_eq!(p("A\t\"q\" r=s"), [kv("A", "\"q\" r=s")]);
    assert_eq!(p("NAME"), [kv("NAME", "")]);
    assert!(p("").is_empty());
    // Raw values expand afterwards.
    let (_, v) = &p(r#"B="$A and ${NOPE:-more}""#)[0];
    assert_eq!(ok(v), "alpha and more");
    assert!(split_pairs("A=1 B", '\\')
        .unwrap_err()
        .contains("can't find ="));
    assert!(split_pairs("=x", '\\').unwrap_err().contains("blank"));
}

#[test]
fn pairs_with_backtick_escape() {
    let p = split_pairs(r#"DIR=C:\tmp MSG="a`"b""#, '`').unwrap();
    assert_eq!(p[0].1, r"C:\tmp");
    assert_eq!(p[1].1, "\"a`\"b\"");
    assert_eq!(expand_word(&p[1].1, &env, '`').unwrap(), "a\"b");
}

#[test]
fn arg_declarations() {
    let d = arg_decls(r#"A B= C=x D="1 2""#, '\\').unwrap();
    let name = |n: &str, v: Option<&str>| (n.to_string(), v.map(str::to_string));
    assert_eq!(
        d,
        [
            name("A", None),
            name("B", Some("")),
            name("C", Some("x")),
            name("D", Some("\"1 2\""))
        ]
    );
    assert!(arg_decls("=x", '\\').unwrap_err().contains("blank"));
    assert!(arg_decls("", '\\').unwrap().is_empty());
}
