//! Each embedded plugin is a component that exports its world's interface and
//! imports only what that world allows (plus the WASI p2 that std uses).

use berth_host::{ABI_PACKAGE, ABI_VERSION};
use berth_plugins::Kind;
use wasmparser::{Parser, Payload};

/// (imports, exports) of a component's outermost level.
fn interface(bytes: &[u8]) -> (Vec<String>, Vec<String>) {
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut depth = 0;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.expect("valid component") {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth -= 1,
            Payload::ComponentImportSection(s) if depth == 0 => {
                imports.extend(s.into_iter().map(|i| i.unwrap().name.name.to_string()))
            }
            Payload::ComponentExportSection(s) if depth == 0 => {
                exports.extend(s.into_iter().map(|e| e.unwrap().name.name.to_string()))
            }
            _ => {}
        }
    }
    (imports, exports)
}

const WASI_STD: [&str; 5] = [
    "wasi:io/",
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:filesystem/",
    "wasi:random/",
];

#[test]
fn plugins_are_components_with_their_worlds_imports() {
    // The embedded plugins are built from the WIT the host implements, so
    // they name exactly the host's ABI version.
    let abi = |interface: &str| format!("{ABI_PACKAGE}/{interface}@{ABI_VERSION}");
    for p in berth_plugins::ALL {
        let (name, world, bytes) = (p.package, p.world, p.wasm);
        // A component's preamble: magic, then version 0x0d and layer 1.
        assert_eq!(
            &bytes[..8],
            b"\0asm\x0d\0\x01\0",
            "{name} is not a component"
        );
        let (imports, exports) = interface(bytes);
        let (host, wasi, export): (&[&str], &[&str], &str) = match p.kind {
            Kind::Storage => (&["log", "layer-fs", "types"], &[], "storage"),
            Kind::Network => (&["log", "types"], &[], "network"),
            Kind::Fetcher => (
                &["log", "blobs", "types"],
                &["wasi:http/types@", "wasi:http/outgoing-handler@"],
                "fetcher",
            ),
        };
        let host: Vec<String> = host.iter().map(|i| abi(i)).collect();
        let allowed: Vec<&str> = host
            .iter()
            .map(String::as_str)
            .chain(wasi.iter().copied())
            .collect();
        let export = abi(export);
        for import in &imports {
            let ok = allowed
                .iter()
                .chain(&WASI_STD)
                .any(|p| import.starts_with(p));
            assert!(
                ok,
                "{name} imports {import}, which the {world} world does not allow"
            );
        }
        assert!(
            !imports.iter().any(|i| i.starts_with("wasi:sockets/")),
            "{name} links wasi:sockets"
        );
        assert_eq!(exports, [export], "{name} exports");
        eprintln!("{name}: {} bytes, imports {imports:?}", bytes.len());
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The digests embedded as constants are those of the embedded bytes, and
/// each compiled form is a wasmtime component artifact.
#[test]
fn digests_and_compiled_forms_match_the_components() {
    for p in berth_plugins::ALL {
        assert_eq!(
            sha256_hex(p.wasm),
            p.wasm_sha256,
            "{}: component digest",
            p.package
        );
        assert_eq!(
            sha256_hex(p.precompiled),
            p.precompiled_sha256,
            "{}: compiled form's digest",
            p.package
        );
        assert_eq!(
            &p.precompiled[..4],
            b"\x7fELF",
            "{} is not compiled",
            p.package
        );
        eprintln!(
            "{}: {} KiB of wasm, {} KiB compiled",
            p.package,
            p.wasm.len() / 1024,
            p.precompiled.len() / 1024
        );
    }
}
