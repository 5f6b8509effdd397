//! Link options for the berth binary only: pack relative relocations (DT_RELR,
//! glibc ≥ 2.36) so the dynamic loader has less to do on every start — the
//! runtime path (`berth runtime run`) is measured against crun.

fn main() {
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    println!("cargo:rerun-if-changed=build.rs");
}
