//! The `bond-dp` command line: bad input is refused with one clear line, and `bond-dp hash`
//! agrees with an independent model of the kernel's formulas (scripts/kernel_hash.py, written
//! from bond_main.c) on thousands of generated and mutated frames.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::{bond_dp, repo_path, Rng};

fn refused(args: &[&str]) -> String {
    let out = bond_dp().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("bond-dp: error: "), "{stderr}");
    stderr
}

/// Runs bond-dp, which must succeed; its standard output.
fn accepted(args: &[&str]) -> String {
    let out = bond_dp().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bad_options_are_refused_with_one_clear_line() {
    let run = |options: &str| {
        refused(&[
            "run",
            "--bond",
            "bond0",
            "--members",
            "eth0,eth1",
            "--options",
            options,
            "--host",
            "none",
        ])
    };
    assert!(run("mode=802.3ad,mimon=100")
        .contains("unknown option \"mimon\" (did you mean \"miimon\"?)"));
    assert!(run("mode=802.3ad,arp_interval=100,arp_ip_target=10.0.0.1")
        .contains("option arp_interval=100: not supported in mode 802.3ad"));
    assert!(run("mode=active-backup,updelay=200").contains("option updelay=200: requires miimon"));
    assert!(run("mode=9").contains("option mode: invalid value \"9\" (allowed: balance-rr (0)"));
    assert!(run("xmit_hash_policy=layer5")
        .contains("option xmit_hash_policy: invalid value \"layer5\""));
    assert!(run("mode=1 miimon=100 primary=eth7").contains("eth7 is not a member of the bond"));
    assert!(refused(&[
        "run",
        "--bond",
        "bond0",
        "--members",
        "no-such-if9",
        "--options",
        "mode=1,miimon=100"
    ])
    .contains("member no-such-if9: no such interface"));
    assert!(
        refused(&["run", "--bond", "b", "--members", "a", "--host", "tun"])
            .contains("invalid host \"tun\"")
    );
    assert!(
        refused(&["hash", "--members", "2", "--frame", "abc"]).contains("odd number of hex digits")
    );
}

#[test]
fn dry_run_prints_the_checked_bond() {
    let out = accepted(&[
        "run",
        "--bond",
        "bond0",
        "--members",
        "eth0,eth1",
        "--dry-run",
        "--options",
        "mode=4 miimon=100 lacp_rate=fast xmit_hash_policy=layer3+4",
    ]);
    assert_eq!(
        out,
        "bond bond0: members eth0,eth1; host tap; mode=802.3ad,miimon=100,xmit_hash_policy=layer3+4,lacp_rate=fast\n  \
         engine: workers=1 queues=all frames=auto frame_size=2048 ring_size=1024 xdp_mode=auto copy_mode=auto\n"
    );
}

#[test]
fn engine_flags_are_checked_and_shown() {
    let base = ["run", "--bond", "b0", "--members", "a,b", "--dry-run"];
    let mut args = base.to_vec();
    args.extend([
        "--workers",
        "2",
        "--ring-size",
        "2048",
        "--xdp-mode",
        "native",
        "--copy-mode",
        "copy",
        "--cores",
        "1,0",
        "--frame-size",
        "4096",
    ]);
    assert!(accepted(&args).contains(
        "engine: workers=2 queues=all frames=auto frame_size=4096 ring_size=2048 xdp_mode=native copy_mode=copy cores=1,0"
    ));
    let with = |flags: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(flags);
        refused(&args)
    };
    // Cores are checked against the CPUs that exist, before anything starts.
    let cpus = std::thread::available_parallelism().unwrap().get();
    let missing = cpus.to_string();
    for cores in ["1024", &missing] {
        let err = with(&["--cores", cores]);
        assert!(
            err.contains(&format!("cores={cores}: no such CPU")),
            "{err}"
        );
    }
    assert!(with(&["--ring-size", "1000"]).contains(
        "engine setting ring_size: invalid value \"1000\" (allowed: a power of two from 64 to 16384)"
    ));
    assert!(with(&["--xdp-mode", "turbo"]).contains("allowed: auto, native, generic"));
    assert!(with(&["--workers", "2", "--queues", "1"]).contains("bond b0: workers=2 but queues=1"));
    assert!(with(&["--frames", "1024"]).contains("cannot fill 2 fill rings"));
}

#[test]
fn config_file_with_two_bonds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bonds.toml");
    std::fs::write(
        &path,
        "[bond.bond0]\nmembers = [\"eth0\", \"eth1\"]\nmode = \"active-backup\"\nmiimon = 100\nprimary = \"eth1\"\n\n\
         [bond.bond1]\nmembers = [\"eth2\", \"eth3\"]\noptions = \"mode=balance-xor,miimon=50,xmit_hash_policy=layer2+3\"\nhost = \"none\"\n",
    )
    .unwrap();
    let text = accepted(&["run", "--dry-run", "--config", path.to_str().unwrap()]);
    assert!(text.contains(
        "bond bond0: members eth0,eth1; host tap; mode=active-backup,miimon=100,primary=eth1"
    ));
    assert!(text.contains("bond bond1: members eth2,eth3; host none; mode=balance-xor,miimon=50,xmit_hash_policy=layer2+3"));
    std::fs::write(
        &path,
        "[bond.bond0]\nmembers = [\"eth0\"]\nmode = \"4\"\nlacp_rate = \"quick\"\n",
    )
    .unwrap();
    let err = refused(&["run", "--config", path.to_str().unwrap()]);
    assert!(err.contains("bonds.toml: bond bond0: option lacp_rate: invalid value \"quick\" (allowed: slow (0), fast (1))"), "{err}");
    std::fs::write(
        &path,
        "[bond.bond0]\nmembers = [\"eth0\"]\n[bond.bond0.engine]\nworkers = 2\ncores = [1, 0]\n",
    )
    .unwrap();
    let text = accepted(&["run", "--dry-run", "--config", path.to_str().unwrap()]);
    assert!(text.contains("workers=2 queues=all"));
    assert!(text.contains("cores=1,0"));
    std::fs::write(
        &path,
        "[bond.bond0]\nmembers = [\"eth0\"]\nengine = { ring_size = 3 }\n",
    )
    .unwrap();
    let err = refused(&["run", "--config", path.to_str().unwrap()]);
    assert!(
        err.contains("bond bond0: engine setting ring_size: invalid value \"3\""),
        "{err}"
    );
}

/// Frames of every shape the hashes care about: 0-2 VLAN tags; IPv4 (options, fragments) and
/// IPv6 (extension headers); TCP/UDP/UDP-Lite/DCCP/SCTP/ESP/AH; ICMP/ICMPv6 echo and errors
/// with embedded packets; GRE, IPIP, SIT and VXLAN tunnels; ARP and other EtherTypes — then
/// some cut short and some with random bytes changed.
fn random_frame(rng: &mut Rng) -> Vec<u8> {
    let mut f = rng.bytes(12);
    for _ in 0..rng.below(3) {
        f.extend_from_slice(if rng.chance(50) {
            &[0x81, 0x00]
        } else {
            &[0x88, 0xa8]
        });
        f.extend_from_slice(&rng.bytes(2));
    }
    match rng.below(10) {
        0..=4 => {
            f.extend_from_slice(&[0x08, 0x00]);
            f.extend(ipv4(rng, 0));
        }
        5..=7 => {
            f.extend_from_slice(&[0x86, 0xdd]);
            f.extend(ipv6(rng, 0));
        }
        8 => {
            f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1 + rng.below(2) as u8]);
            f.extend(rng.bytes(20));
        }
        _ => {
            f.extend(rng.bytes(2));
            let n = rng.below(60) as usize;
            f.extend(rng.bytes(n));
        }
    }
    if rng.chance(15) {
        let keep = rng.below(f.len() as u64 + 1) as usize;
        f.truncate(keep);
    }
    if rng.chance(15) && !f.is_empty() {
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(f.len() as u64) as usize;
            f[at] = rng.byte();
        }
    }
    f
}

fn ipv4(rng: &mut Rng, depth: u32) -> Vec<u8> {
    let ihl = if rng.chance(80) {
        5
    } else {
        5 + rng.below(3) as u8
    };
    let (proto, payload) = l4(rng, depth, false);
    let frag: u16 = match rng.below(10) {
        0 => 0x2000,                       // MF, first fragment
        1 => rng.below(0x1fff) as u16 + 1, // later fragment
        2 => 0x4000,                       // DF
        _ => 0,
    };
    let mut h = vec![
        0x40 | ihl,
        0,
        0,
        0,
        0,
        0,
        (frag >> 8) as u8,
        frag as u8,
        64,
        proto,
        0,
        0,
    ];
    h.extend(rng.bytes(8));
    h.extend(rng.bytes(usize::from(ihl - 5) * 4));
    h.extend(payload);
    h
}

fn ipv6(rng: &mut Rng, depth: u32) -> Vec<u8> {
    let (mut proto, mut payload) = l4(rng, depth, true);
    if rng.chance(15) {
        // One extension header in front (hop-by-hop, routing or destination options).
        let mut ext = vec![proto, 0];
        ext.extend(rng.bytes(6));
        ext.extend(payload);
        payload = ext;
        proto = [0u8, 43, 60][rng.below(3) as usize];
    }
    let mut h = vec![0x60, 0, 0, 0, 0, 0, proto, 64];
    h.extend(rng.bytes(32));
    h.extend(payload);
    h
}

fn l4(rng: &mut Rng, depth: u32, v6: bool) -> (u8, Vec<u8>) {
    let icmp = if v6 { 58 } else { 1 };
    let tunnels = depth < 2;
    match rng.below(if tunnels { 14 } else { 10 }) {
        0 | 1 => (6, rng.bytes(20)),
        2 | 3 => (17, rng.bytes(8)),
        4 => (
            [136u8, 33, 132, 50, 51][rng.below(5) as usize],
            rng.bytes(12),
        ),
        5 => {
            let t = if v6 {
                [128u8, 129][rng.below(2) as usize]
            } else {
                [0u8, 8, 13, 14][rng.below(4) as usize]
            };
            let id = if rng.chance(20) {
                [0, 0]
            } else {
                [rng.byte(), rng.byte()]
            };
            (icmp, vec![t, 0, 0, 0, id[0], id[1], 0, 1])
        }
        6 | 7 => {
            // An ICMP error carrying the start of the packet it is about.
            let t = if v6 {
                1 + rng.below(4) as u8
            } else {
                [3u8, 4, 5, 11, 12][rng.below(5) as usize]
            };
            let mut m = vec![t, rng.byte(), 0, 0, 0, 0, 0, 0];
            let inner = if v6 { ipv6(rng, 2) } else { ipv4(rng, 2) };
            let keep = 28 + rng.below(40) as usize;
            m.extend(inner.into_iter().take(keep));
            (icmp, m)
        }
        8 => {
            let n = rng.below(16) as usize;
            (rng.byte(), rng.bytes(n))
        }
        9 => (
            icmp,
            vec![rng.byte(), rng.byte(), 0, 0, rng.byte(), rng.byte(), 0, 0],
        ),
        10 => (4, ipv4(rng, depth + 1)),
        11 => (41, ipv6(rng, depth + 1)),
        12 => {
            // GRE, optionally with checksum/key/sequence, carrying IP or Ethernet (TEB).
            let flags: u16 =
                [0x0000u16, 0x2000, 0x8000, 0x3000, 0xb000, 0x0001][rng.below(6) as usize];
            let mut g = vec![(flags >> 8) as u8, flags as u8];
            let inner = match rng.below(3) {
                0 => {
                    g.extend_from_slice(&[0x08, 0x00]);
                    ipv4(rng, depth + 1)
                }
                1 => {
                    g.extend_from_slice(&[0x86, 0xdd]);
                    ipv6(rng, depth + 1)
                }
                _ => {
                    g.extend_from_slice(&[0x65, 0x58]);
                    let mut e = rng.bytes(12);
                    e.extend_from_slice(&[0x08, 0x00]);
                    e.extend(ipv4(rng, depth + 1));
                    e
                }
            };
            g.extend(rng.bytes(4 * (flags & 0xb000).count_ones() as usize));
            g.extend(inner);
            (47, g)
        }
        _ => {
            // VXLAN: UDP to 4789, 8-byte VXLAN header, inner Ethernet.
            let mut u = vec![
                rng.byte(),
                rng.byte(),
                0x12,
                0xb5,
                0,
                0,
                0,
                0,
                0x08,
                0,
                0,
                0,
                0,
                0,
                1,
                0,
            ];
            u.extend(rng.bytes(12));
            if rng.chance(50) {
                u.extend_from_slice(&[0x08, 0x00]);
                u.extend(ipv4(rng, depth + 1));
            } else {
                u.extend_from_slice(&[0x86, 0xdd]);
                u.extend(ipv6(rng, depth + 1));
            }
            (17, u)
        }
    }
}

fn run_with_stdin(mut cmd: std::process::Command, input: &str) -> String {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn hash_agrees_with_the_kernel_model_on_arbitrary_frames() {
    let mut rng = Rng(0x5eed_b0d0_1234_5678);
    let frames: Vec<String> = (0..4000)
        .map(|_| {
            random_frame(&mut rng)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        })
        .collect();
    // Every frame shorter than an Ethernet header is written as at least one byte.
    let input = frames
        .iter()
        .map(|f| {
            if f.is_empty() {
                "00".to_string()
            } else {
                f.clone()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    for policy in [
        "layer2",
        "layer2+3",
        "layer3+4",
        "encap2+3",
        "encap3+4",
        "vlan+srcmac",
    ] {
        for members in [1, 2, 3, 7] {
            let mut ours = bond_dp();
            ours.args([
                "hash",
                "--options",
                &format!("xmit_hash_policy={policy}"),
                "--members",
                &members.to_string(),
                "--frame",
                "-",
            ]);
            let mut model = std::process::Command::new("python3");
            model.arg(repo_path("scripts/kernel_hash.py")).args([
                "--policy",
                policy,
                "--members",
                &members.to_string(),
            ]);
            let (ours, model) = (run_with_stdin(ours, &input), run_with_stdin(model, &input));
            let ours: Vec<&str> = ours.lines().collect();
            let model: Vec<&str> = model.lines().collect();
            assert_eq!(ours.len(), frames.len());
            for (i, (a, b)) in ours.iter().zip(&model).enumerate() {
                assert_eq!(a, b, "{policy}, {members} members, frame {}", frames[i]);
            }
        }
    }
}

#[test]
fn hash_in_other_modes_prints_the_modes_choice() {
    let frame = "0200000000020200000000010800450000280000000040060000c0a8010ac0a801143039005000000000000000000000000000000000";
    let out = |options: &str| {
        let o = bond_dp()
            .args([
                "hash",
                "--options",
                options,
                "--members",
                "3",
                "--frame",
                frame,
                "--frame",
                frame,
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    assert_eq!(
        out("xmit_hash_policy=layer3+4"),
        "0 0x27273ba3\n0 0x27273ba3\n"
    );
    assert_eq!(
        out("mode=802.3ad,xmit_hash_policy=layer3+4"),
        "0 0x27273ba3\n0 0x27273ba3\n"
    );
    assert_eq!(out("mode=balance-rr"), "1 0x00000803\n2 0x00000803\n");
    assert_eq!(out("mode=active-backup"), "0 0x00000803\n0 0x00000803\n");
    assert_eq!(out("mode=broadcast"), "all 0x00000803\nall 0x00000803\n");
}

#[test]
fn import_turns_other_tools_bonds_into_a_config_that_runs() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let bond = write(
        "ifcfg-bond0",
        "DEVICE=bond0\nBONDING_OPTS=\"mode=active-backup miimon=100 primary=eth0\"\n",
    );
    let eth0 = write("ifcfg-eth0", "DEVICE=eth0\nMASTER=bond0\nSLAVE=yes\n");
    let eth1 = write("ifcfg-eth1", "DEVICE=eth1\nMASTER=bond0\nSLAVE=yes\n");
    let toml = accepted(&["import", &bond, &eth0, &eth1]);
    assert!(
        toml.contains("[bond.bond0]\nmembers = [\"eth0\", \"eth1\"]\n"),
        "{toml}"
    );
    // What import prints is a config `run` takes.
    let config = write("bond-dp.toml", &toml);
    let dry = accepted(&["run", "--config", &config, "--dry-run"]);
    assert!(dry.contains("bond0"), "{dry}");
    // `run --config` takes another tool's file directly, warnings included.
    let interfaces = write(
        "interfaces",
        "auto bond0\niface bond0 inet manual\n    bond-slaves eth0 eth1\n    bond-mode 802.3ad\n    bond-lacp-rate fast\n    bond-xmit-hash-polcy layer3+4\n",
    );
    let dry = accepted(&["run", "--config", &interfaces, "--dry-run"]);
    assert!(dry.contains("bond bond0: members eth0,eth1"), "{dry}");
    assert!(dry.contains("mode=802.3ad"), "{dry}");
    assert!(
        dry.contains(":6: unknown option \"xmit_hash_polcy\" (did you mean \"xmit_hash_policy\"?)"),
        "{dry}"
    );
    // A bad value is refused with the file and line.
    let bad = write("bonding.conf", "options bonding mode=1 miimon=often\n");
    let err = refused(&["import", &bad]);
    assert!(
        err.contains("bonding.conf:1: option miimon: invalid value \"often\""),
        "{err}"
    );
}

#[test]
fn the_version_names_the_commit() {
    let v = accepted(&["--version"]);
    let rev = v
        .trim()
        .strip_prefix(&format!("bond-dp {} (git ", env!("CARGO_PKG_VERSION")))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{v}"));
    let hash = rev.trim_end_matches("-dirty");
    assert!(
        hash == "unknown" || (hash.len() == 12 && hash.chars().all(|c| c.is_ascii_hexdigit())),
        "{v}"
    );
}

#[test]
fn without_root_run_and_status_say_so_plainly() {
    if !common::require_root() {
        return;
    }
    use std::os::unix::process::CommandExt;
    let as_nobody = |args: &[&str]| {
        let out = bond_dp().args(args).uid(65534).gid(65534).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let run = [
        "run",
        "--bond",
        "b0",
        "--members",
        "eth9",
        "--options",
        "mode=1",
    ];
    let (code, err) = as_nobody(&run);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("running a bond needs root") && err.contains("missing: CAP_NET_ADMIN"),
        "{err}"
    );
    assert!(!err.contains("libbpf"), "no libbpf noise: {err}");
    // A dry run checks the configuration without privileges.
    let (code, _) = as_nobody(&[&run[..], &["--dry-run"]].concat());
    assert_eq!(code, Some(0));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b0.sock"), "").unwrap();
    let run_dir = dir.path().to_str().unwrap();
    let (code, err) = as_nobody(&["status", "b0", "--run-dir", run_dir]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("answers root only: run this as root"), "{err}");
}
