use super::*;

fn ignore(text: &str) -> Ignore {
    Ignore::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

#[test]
fn star_within_one_directory() {
    let i = ignore("*.md\n");
    assert!(i.excluded("README.md"));
    assert!(i.excluded("a.md"));
    assert!(!i.excluded("docs/a.md"), "* does not cross /");
    assert!(!i.excluded("README.txt"));
    assert!(!i.has_exceptions());
}

#[test]
fn double_star_any_depth() {
    let i = ignore("**/*.go");
    assert!(i.excluded("main.go"), "**/ also matches no directory");
    assert!(i.excluded("cmd/main.go"));
    assert!(i.excluded("a/b/c/x.go"));
    assert!(!i.excluded("a/b/c/x.gone"));

    let i = ignore("a/**/z");
    assert!(i.excluded("a/z") && i.excluded("a/b/z") && i.excluded("a/b/c/z"));
    assert!(!i.excluded("b/z"));

    let i = ignore("build/**");
    assert!(i.excluded("build/x") && i.excluded("build/x/y"));
    assert!(!i.excluded("build"), "dir/** is what is below dir, not dir");
    assert!(!i.excluded("builds/x"));

    let i = ignore("**");
    assert!(i.excluded("anything") && i.excluded("a/b"));
}

#[test]
fn exception_after_exclusion() {
    let i = ignore("*.md\n!README.md\n");
    assert!(i.excluded("CHANGES.md"));
    assert!(!i.excluded("README.md"));
    assert!(i.has_exceptions());
}

#[test]
fn last_match_wins_both_ways() {
    // An exclusion after the exception takes the file out again.
    let i = ignore("*.md\n!README.md\nREADME.md\n");
    assert!(i.excluded("README.md"));
    // An exception after the exclusion brings it back.
    let i = ignore("README.md\n!*.md\n");
    assert!(!i.excluded("README.md"));
    let i = ignore("!README.md\n*.md\n");
    assert!(
        i.excluded("README.md"),
        "an earlier exception does not protect"
    );
}

#[test]
fn directory_excludes_everything_below() {
    let i = ignore("dir");
    assert!(i.excluded("dir"));
    assert!(i.excluded("dir/a"));
    assert!(i.excluded("dir/a/b"));
    assert!(!i.excluded("dir2/a"));
    assert!(
        !i.excluded("other/dir"),
        "a pattern is anchored at the context root"
    );
}

#[test]
fn dir_star_versus_dir() {
    let i = ignore("dir/*");
    assert!(!i.excluded("dir"), "dir/* leaves dir itself");
    assert!(i.excluded("dir/a"));
    assert!(i.excluded("dir/a/b"), "through its parent dir/a");

    // An exception inside an excluded directory: the walker must descend.
    let i = ignore("dir\n!dir/keep");
    assert!(i.excluded("dir/other"));
    assert!(!i.excluded("dir/keep"));
    assert!(!i.excluded("dir/keep/deeper"));
    assert!(i.has_exceptions());
}

#[test]
fn leading_slash_and_dot_are_cleaned() {
    let i = ignore("/abs\n./rel\nx//y/\nup/../down\n");
    assert!(i.excluded("abs") && i.excluded("abs/f"));
    assert!(i.excluded("rel") && i.excluded("rel/f"));
    assert!(i.excluded("x/y/z"));
    assert!(i.excluded("down") && !i.excluded("up"));
    let i = ignore("! /abs/keep\n/abs");
    assert!(i.excluded("abs/keep"), "the later /abs wins");
    let i = ignore("/abs\n! /abs/keep");
    assert!(!i.excluded("abs/keep"));
    // Paths given to excluded are cleaned too.
    assert!(ignore("a/b").excluded("./a//b"));
}

#[test]
fn comments_and_blank_lines() {
    let i = ignore("# a comment\n\n   \n*.log\n#*.md\n");
    assert!(i.excluded("x.log"));
    assert!(!i.excluded("x.md"), "#*.md is a comment");
    assert!(!i.excluded("# a comment"));
    // Only a # at the very start makes a comment; patterns are trimmed.
    assert!(ignore("  #hash  ").excluded("#hash"));
    assert!(ignore("\u{feff}bom").excluded("bom"));
}

#[test]
fn question_mark_classes_and_escapes() {
    let i = ignore("file?.txt\n[abc].c\n[^x]y\nlit\\*");
    assert!(i.excluded("file1.txt") && !i.excluded("file10.txt"));
    assert!(!i.excluded("file/.txt"), "? does not match /");
    assert!(i.excluded("b.c") && !i.excluded("d.c"));
    assert!(i.excluded("ay") && !i.excluded("xy"));
    assert!(i.excluded("lit*") && !i.excluded("litx"));
    let i = ignore("[a-c]?");
    assert!(i.excluded("b1") && !i.excluded("d1"));
}

#[test]
fn double_star_quirks_follow_docker() {
    // `**name` is a plain suffix test in the patternmatcher.
    let i = ignore("**foo");
    assert!(i.excluded("xfoo") && i.excluded("a/bfoo"));
    assert!(ignore("**/foo").excluded("foo"));
    assert!(!ignore("**/foo").excluded("xfoo"));
}

#[test]
fn root_is_never_excluded() {
    let i = ignore("*\n**");
    assert!(!i.excluded("."));
    assert!(!i.excluded(""));
    assert!(i.excluded("x"));
}

#[test]
fn bad_patterns_are_refused() {
    assert!(Ignore::parse("!")
        .unwrap_err()
        .contains("illegal exclusion"));
    assert!(Ignore::parse("ok\n[abc").unwrap_err().contains("line 2"));
    assert!(Ignore::parse("[]").is_err());
    assert!(Ignore::parse("[z-a]").is_err());
    assert!(Ignore::parse("trailing\\").is_err());
}

#[test]
fn empty_file_excludes_nothing() {
    let i = ignore("");
    assert!(!i.excluded("a") && !i.has_exceptions());
}
