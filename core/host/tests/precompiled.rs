//! The default plugins load from the compiled form built into berth without
//! compiling anything; a compiled form the engine cannot use is compiled
//! instead (and says why); compiling may run in a separate process, whose
//! failure is reported and whose absence falls back to compiling here.

use std::path::Path;

use berth_host::{
    Builtin, Compiler, Grants, HostConfig, Origin, PluginHost, PluginSpec, StoragePlugin,
    WasmSource, WASMTIME_VERSION,
};

fn vfs() -> Builtin {
    let p = &berth_plugins::STORAGE_VFS_PLUGIN;
    Builtin {
        wasm: p.wasm,
        wasm_sha256: p.wasm_sha256,
        precompiled: p.precompiled,
        precompiled_sha256: p.precompiled_sha256,
        settings: berth_plugins::ENGINE_SETTINGS,
    }
}

fn host(cache: &Path, compiler: Compiler) -> PluginHost {
    PluginHost::new(HostConfig {
        compiler,
        ..HostConfig::new(cache)
    })
    .unwrap()
}

fn load(host: &PluginHost, root: &Path, wasm: WasmSource) -> StoragePlugin {
    host.load_storage(PluginSpec {
        name: "storage-vfs".into(),
        wasm,
        grants: Grants::new(root),
    })
    .unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn a_builtin_plugin_is_installed_not_compiled() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let h = host(&cache, Compiler::InProcess);
    let p = load(&h, &dir.path().join("root"), WasmSource::Builtin(vfs()));
    assert_eq!(p.info().origin, Origin::Precompiled);
    assert_eq!(h.compiled(), 0, "nothing was compiled");
    // Named as the host names what it compiles: the component's digest, the
    // wasmtime version and the engine settings, which are the build's.
    let file = &p.info().cache_file;
    assert_eq!(
        file.file_name().unwrap().to_string_lossy(),
        format!(
            "{}-{WASMTIME_VERSION}-{:016x}.cwasm",
            vfs().wasm_sha256,
            berth_plugins::ENGINE_SETTINGS
        )
    );
    // The exact bytes the build made (copied out of the test binary's file).
    assert_eq!(
        sha256_hex(&std::fs::read(file).unwrap()),
        vfs().precompiled_sha256
    );
    assert!(!p.has_layer("nothing").await.unwrap());

    // A restarted host takes it from the cache.
    let h2 = host(&cache, Compiler::InProcess);
    let again = load(&h2, &dir.path().join("root"), WasmSource::Builtin(vfs()));
    assert_eq!(again.info().origin, Origin::Cache);
    assert_eq!(h2.compiled(), 0);
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);
}

#[tokio::test]
async fn a_builtin_compiled_with_other_settings_is_compiled_again() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(&dir.path().join("cache"), Compiler::InProcess);
    let other = Builtin {
        settings: berth_plugins::ENGINE_SETTINGS ^ 1,
        ..vfs()
    };
    let p = load(&h, &dir.path().join("root"), WasmSource::Builtin(other));
    assert_eq!(p.info().origin, Origin::Compiled);
    assert_eq!(h.compiled(), 1);
    assert!(!p.has_layer("nothing").await.unwrap());
}

#[tokio::test]
async fn a_builtin_wasmtime_refuses_is_compiled_instead() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(&dir.path().join("cache"), Compiler::InProcess);
    // Not an ELF file any more (and not in the executable: written from memory).
    let mut bad = vfs().precompiled.to_vec();
    bad[0] = 0;
    let bad: &'static [u8] = Box::leak(bad.into_boxed_slice());
    let damaged = Builtin {
        precompiled: bad,
        precompiled_sha256: Box::leak(sha256_hex(bad).into_boxed_str()),
        ..vfs()
    };
    let p = load(&h, &dir.path().join("root"), WasmSource::Builtin(damaged));
    assert_eq!(p.info().origin, Origin::Compiled);
    assert_eq!(h.compiled(), 1);
    assert!(!p.has_layer("nothing").await.unwrap());
}

#[test]
fn a_failing_compiler_process_is_reported_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(
        &dir.path().join("cache"),
        Compiler::Command {
            program: "/bin/sh".into(),
            args: vec![
                "-c".into(),
                "cat >/dev/null; echo 'no good: this is not a component' >&2; exit 1".into(),
                "sh".into(),
            ],
        },
    );
    let err = h
        .load_storage(PluginSpec {
            name: "storage-vfs".into(),
            wasm: WasmSource::Bytes(berth_plugins::STORAGE_VFS),
            grants: Grants::new(dir.path().join("root")),
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("storage-vfs"), "{err}");
    assert!(err.contains("no good: this is not a component"), "{err}");
    assert_eq!(h.compiled(), 0);
}

#[tokio::test]
async fn without_a_compiler_process_the_host_compiles_itself() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(
        &dir.path().join("cache"),
        Compiler::Command {
            program: dir.path().join("no-such-program"),
            args: Vec::new(),
        },
    );
    let p = load(
        &h,
        &dir.path().join("root"),
        WasmSource::Bytes(berth_plugins::STORAGE_VFS),
    );
    assert_eq!(p.info().origin, Origin::Compiled);
    assert_eq!(h.compiled(), 1);
    assert!(!p.has_layer("nothing").await.unwrap());
}

/// A compiler process that writes what is not a compiled component: the
/// host refuses it and compiles the component itself.
#[tokio::test]
async fn what_a_compiler_process_wrote_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(
        &dir.path().join("cache"),
        Compiler::Command {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), "cat >\"$1\"".into(), "sh".into()],
        },
    );
    let p = load(
        &h,
        &dir.path().join("root"),
        WasmSource::Bytes(berth_plugins::STORAGE_VFS),
    );
    assert_eq!(p.info().origin, Origin::Compiled);
    assert!(!p.has_layer("nothing").await.unwrap());
    // What stays in the cache is the host's own compile.
    let file = std::fs::read(&p.info().cache_file).unwrap();
    assert_eq!(&file[..4], b"\x7fELF");
}
