//! Link options for the berth binary only. It is linked as a position-
//! dependent executable (`-no-pie`; the code itself stays PIC): the loader
//! then has no relative relocations to apply, so the 0.8 MB of relocated
//! read-only data (vtables, tables of pointers) stays clean and shared
//! instead of being copied into every process. That copy was most of what
//! each container's monitor (`berth shim`) cost, and part of every
//! `berth runtime` start. The price: the main image of `berth` is at a fixed
//! address (ASLR still places the heap, stacks, mmaps and shared libraries).

fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
    println!("cargo:rerun-if-changed=build.rs");
}
