//! The container types serialize to the JSON the daemon wrote with `json!`
//! before they existed.

use serde_json::json;

use super::*;

#[test]
fn summary_is_dockers_json() {
    let mut s = ContainerSummary {
        id: "c1".into(),
        names: vec!["/web".into()],
        image: "busybox".into(),
        image_id: "sha256:1".into(),
        command: "sh".into(),
        created: 5,
        ports: vec![Port {
            ip: "0.0.0.0".into(),
            private_port: 80,
            public_port: 8080,
            kind: "tcp".into(),
        }],
        state: "running".into(),
        status: "Up 1 second".into(),
        host_config: SummaryHostConfig {
            network_mode: "bridge".into(),
        },
        ..Default::default()
    };
    s.network_settings.networks.insert(
        "bridge".into(),
        SummaryEndpoint {
            network_id: "n".into(),
            endpoint_id: "e".into(),
            gateway: "10.0.0.1".into(),
            ip_address: "10.0.0.2".into(),
            ip_prefix_len: 24,
            mac_address: "m".into(),
        },
    );
    assert_eq!(
        serde_json::to_value(&s).unwrap(),
        json!({
            "Id": "c1", "Names": ["/web"], "Image": "busybox", "ImageID": "sha256:1", "Command": "sh",
            "Created": 5,
            "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
            "Labels": {}, "State": "running", "Status": "Up 1 second",
            "HostConfig": {"NetworkMode": "bridge"},
            "NetworkSettings": {"Networks": {"bridge": {
                "NetworkID": "n", "EndpointID": "e", "Gateway": "10.0.0.1",
                "IPAddress": "10.0.0.2", "IPPrefixLen": 24, "MacAddress": "m",
            }}},
            "Mounts": [],
        })
    );
    let back: ContainerSummary = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
    assert_eq!(back.ports[0].public_port, 8080);
}

#[test]
fn path_stat_is_dockers_json() {
    let s = PathStat {
        link_target: String::new(),
        mode: 0o755 | 1 << 31,
        mtime: "2026-01-01T00:00:00Z".into(),
        name: "etc".into(),
        size: 4096,
    };
    assert_eq!(
        serde_json::to_string(&s).unwrap(),
        r#"{"linkTarget":"","mode":2147484141,"mtime":"2026-01-01T00:00:00Z","name":"etc","size":4096}"#
    );
}

#[test]
fn mounts_keep_their_three_shapes() {
    let bind = MountPoint {
        kind: "bind".into(),
        source: Some("/src".into()),
        destination: "/dst".into(),
        mode: Some(String::new()),
        rw: true,
        propagation: Some("rprivate".into()),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_value(&bind).unwrap(),
        json!({"Type": "bind", "Source": "/src", "Destination": "/dst", "Mode": "", "RW": true, "Propagation": "rprivate"})
    );
    let vol = MountPoint {
        kind: "volume".into(),
        name: Some("data".into()),
        driver: Some("local".into()),
        destination: "/d".into(),
        mode: Some("z".into()),
        rw: false,
        propagation: Some(String::new()),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_value(&vol).unwrap(),
        json!({"Type": "volume", "Name": "data", "Driver": "local", "Destination": "/d", "Mode": "z", "RW": false, "Propagation": ""})
    );
    let mount = MountPoint {
        kind: "tmpfs".into(),
        source: Some(String::new()),
        destination: "/t".into(),
        rw: true,
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_value(&mount).unwrap(),
        json!({"Type": "tmpfs", "Source": "", "Destination": "/t", "RW": true})
    );
}

#[test]
fn network_settings_keep_dockers_nulls() {
    let mut n = NetworkSettings {
        sandbox_key: "/proc/1/ns/net".into(),
        ..Default::default()
    };
    n.ports.insert("80/tcp".into(), None);
    n.ports.insert(
        "443/tcp".into(),
        Some(vec![PortBinding {
            host_ip: "0.0.0.0".into(),
            host_port: "8443".into(),
        }]),
    );
    n.networks
        .insert("bridge".into(), EndpointInspect::default());
    assert_eq!(
        serde_json::to_value(&n).unwrap(),
        json!({
            "Bridge": "", "SandboxID": "", "SandboxKey": "/proc/1/ns/net",
            "Ports": {"80/tcp": null, "443/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8443"}]},
            "HairpinMode": false,
            "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "SecondaryIPAddresses": null,
            "SecondaryIPv6Addresses": null, "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
            "Bandwidth": 0,
            "Networks": {"bridge": {
                "IPAMConfig": null, "Links": null, "Aliases": null,
                "NetworkID": "", "EndpointID": "", "Gateway": "",
                "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
                "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": "",
                "DriverOpts": null
            }}
        })
    );
}

#[test]
fn state_and_wait_are_dockers_json() {
    let st = ContainerState {
        status: "exited".into(),
        exit_code: 3,
        started_at: "0001-01-01T00:00:00Z".into(),
        finished_at: "0001-01-01T00:00:00Z".into(),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_value(&st).unwrap(),
        json!({
            "Status": "exited", "Running": false, "Paused": false, "Restarting": false,
            "OOMKilled": false, "Dead": false, "Pid": 0, "ExitCode": 3, "Error": "",
            "StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z", "Health": null,
        })
    );
    let w = WaitResponse {
        status_code: 0,
        error: None,
    };
    assert_eq!(
        serde_json::to_value(&w).unwrap(),
        json!({"StatusCode": 0, "Error": null})
    );
    let inspect = serde_json::to_value(ContainerInspect::default()).unwrap();
    assert!(inspect["ExecIDs"].is_null());
    assert_eq!(inspect["GraphDriver"], json!({"Name": "", "Data": {}}));
}
