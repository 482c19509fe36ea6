use super::*;
use crate::policy::Mode;

fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .collect()
}

#[test]
fn rhel_ifcfg_bond_and_member_files() {
    let imported = import(&files(&[
        (
            "ifcfg-bond0",
            "# Managed by hand\nDEVICE=bond0\nTYPE=Bond\nBONDING_MASTER=yes\n\
             BONDING_OPTS=\"mode=active-backup miimon=100 primary=eth0 updelay=200\"\n\
             IPADDR=192.0.2.10\nPREFIX=24\nONBOOT=yes\n",
        ),
        (
            "ifcfg-eth0",
            "DEVICE=eth0\nMASTER=bond0\nSLAVE=yes\nONBOOT=yes\n",
        ),
        ("ifcfg-eth1", "TYPE=Ethernet\nMASTER=bond0\nSLAVE=yes\n"),
    ]))
    .unwrap();
    assert_eq!(imported.bonds.len(), 1);
    let b = &imported.bonds[0];
    assert_eq!(
        (b.name.as_str(), b.members.as_slice()),
        ("bond0", &["eth0".to_string(), "eth1".to_string()][..])
    );
    assert_eq!(b.options.mode, Mode::ActiveBackup);
    assert_eq!((b.options.miimon, b.options.updelay), (100, 200));
    assert_eq!(b.addresses, ["192.0.2.10/24"]);
    let toml = imported.to_toml();
    assert!(
        toml.contains("[bond.bond0]\nmembers = [\"eth0\", \"eth1\"]\n"),
        "{toml}"
    );
    assert!(
        toml.contains("ip addr add 192.0.2.10/24 dev bond0"),
        "{toml}"
    );
    // The TOML reads back as a bond-dp config.
    let config = crate::config::ConfigFile::parse(&toml, "imported").unwrap();
    assert_eq!(
        config.bond("bond0").unwrap().options.mode,
        Mode::ActiveBackup
    );
}

#[test]
fn modprobe_options_apply_to_every_bond_the_module_makes() {
    let imported = import(&files(&[(
        "/etc/modprobe.d/bonding.conf",
        "alias netdev-bond0 bonding\noptions bonding mode=4 miimon=100 lacp_rate=1 max_bonds=2\n",
    )]))
    .unwrap();
    let names: Vec<&str> = imported.bonds.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["bond0", "bond1"]);
    assert!(imported.bonds.iter().all(|b| b.options.mode == Mode::Lacp));
    assert!(imported
        .warnings
        .iter()
        .any(|w| w.contains("bond bond1 has no members")));
}

#[test]
fn nmcli_sequences_with_modify_and_connection_names() {
    let imported = import(&files(&[(
        "runbook.sh",
        "nmcli con add type bond con-name uplink ifname bond0 bond.options \"mode=active-backup,miimon=100\"\n\
         nmcli con add type ethernet con-name uplink-p1 ifname eth0 master uplink\n\
         nmcli connection add type bond-slave ifname eth1 master bond0\n\
         nmcli con mod uplink bond.options \"mode=802.3ad,miimon=100,lacp_rate=fast\"\n\
         nmcli con mod uplink ipv4.addresses 192.0.2.10/24 ipv4.method manual\n",
    )]))
    .unwrap();
    let b = &imported.bonds[0];
    assert_eq!(b.name, "bond0");
    assert_eq!(b.members, ["eth0", "eth1"]);
    assert_eq!(b.options.mode, Mode::Lacp);
    assert_eq!(b.addresses, ["192.0.2.10/24"]);
}

#[test]
fn typos_are_reported_with_file_line_and_the_nearest_option() {
    let imported = import(&files(&[(
        "ifcfg-bond0",
        "DEVICE=bond0\nBONDING_OPTS=\"mode=1 miimon=100 updealy=200\"\n",
    )]))
    .unwrap();
    assert_eq!(
        imported.warnings[0],
        "ifcfg-bond0:2: unknown option \"updealy\" (did you mean \"updelay\"?): left out"
    );
    assert!(imported
        .to_toml()
        .contains("# warning: ifcfg-bond0:2: unknown option"));
    // A bad value refuses the import, naming where it was.
    let err = import(&files(&[(
        "bonding.conf",
        "options bonding mode=active-backup miimon=often\n",
    )]))
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("bonding.conf:1: option miimon: invalid value \"often\""),
        "{err}"
    );
    let unknown = import(&files(&[("notes.txt", "hello\n")])).unwrap_err();
    assert!(unknown
        .to_string()
        .contains("cannot tell which tool wrote it"));
}

#[test]
fn shell_words_follow_quotes_and_escapes() {
    assert_eq!(
        shell_words(r#"a "b c" 'd e' f\ g "h\"i""#).unwrap(),
        ["a", "b c", "d e", "f g", "h\"i"]
    );
    assert!(shell_words("\"open").is_err());
    assert_eq!(shell_words("x=\"\"").unwrap(), ["x="]);
}

#[test]
fn systemd_networkd_netdev_and_network_files() {
    let imported = import(&files(&[
        (
            "25-bond0.netdev",
            "[NetDev]\nName=bond0\nKind=bond\n\n[Bond]\nMode=802.3ad\nTransmitHashPolicy=layer3+4\n\
             MIIMonitorSec=100ms\nLACPTransmitRate=fast\nUpDelaySec=0.2s\nMinLinks=1\n\
             AllSlavesActive=no\nAdSelect=bandwidth\nTransmitHashPolcy=layer2\n",
        ),
        ("30-eno1.network", "[Match]\nName=eno1\n\n[Network]\nBond=bond0\n"),
        ("30-eno2.network", "[Match]\nName=eno2\n\n[Network]\nBond=bond0\n"),
        ("40-bond0.network", "[Match]\nName=bond0\n\n[Network]\nAddress=192.0.2.10/24\n"),
    ]))
    .unwrap();
    let b = &imported.bonds[0];
    assert_eq!((b.name.as_str(), b.members.len()), ("bond0", 2));
    assert_eq!(b.options.mode, Mode::Lacp);
    assert_eq!(
        (b.options.miimon, b.options.updelay, b.options.min_links),
        (100, 200, 1)
    );
    assert_eq!(b.addresses, ["192.0.2.10/24"]);
    assert_eq!(
        imported.warnings,
        ["25-bond0.netdev:14: unknown [Bond] key \"TransmitHashPolcy\" (did you mean \"TransmitHashPolicy\"?): left out"]
    );

    // Active-backup with the primary set on a member's .network file.
    let imported = import(&files(&[
        (
            "bond1.netdev",
            "[NetDev]\nName=bond1\nKind=bond\n[Bond]\nMode=active-backup\nMIIMonitorSec=1s\n\
             PrimaryReselectPolicy=better\nFailOverMACPolicy=active\nGratuitousARP=3\n",
        ),
        (
            "eth0.network",
            "[Match]\nName=eth0\n[Network]\nBond=bond1\nPrimarySlave=true\n",
        ),
        (
            "eth1.network",
            "[Match]\nName=eth1\n[Network]\nBond=bond1\n",
        ),
    ]))
    .unwrap();
    let o = &imported.bonds[0].options;
    assert_eq!(o.mode, Mode::ActiveBackup);
    assert_eq!((o.miimon, o.num_peer_notif), (1000, 3));
    assert_eq!(o.primary.as_deref(), Some("eth0"));
}

#[test]
fn proxmox_interfaces_with_a_vlan_aware_bridge_over_an_lacp_bond() {
    let imported = import(&files(&[(
        "/etc/network/interfaces",
        "auto lo\niface lo inet loopback\n\n\
         iface eno1 inet manual\niface eno2 inet manual\n\n\
         auto bond0\niface bond0 inet manual\n\tbond-slaves eno1 eno2\n\tbond-miimon 100\n\
         \tbond-mode 802.3ad\n\tbond-xmit-hash-policy layer2+3\n\tbond-lacp-rate fast\n\n\
         auto vmbr0\niface vmbr0 inet static\n\taddress 192.0.2.10/24\n\tgateway 192.0.2.1\n\
         \tbridge-ports bond0\n\tbridge-stp off\n\tbridge-fd 0\n\tbridge-vlan-aware yes\n\
         \tbridge-vids 2-4094\n",
    )]))
    .unwrap();
    assert_eq!(imported.bonds.len(), 1);
    let b = &imported.bonds[0];
    assert_eq!(b.members, ["eno1", "eno2"]);
    assert_eq!(b.options.mode, Mode::Lacp);
    assert!(
        imported
            .warnings
            .iter()
            .any(|w| w.contains("bridge vmbr0 is over bond bond0")
                && w.contains("ip link set bond0 master vmbr0")
                && w.contains("VLAN-aware")),
        "{:?}",
        imported.warnings
    );
    // A typo in a bond-* key names the line and the nearest option.
    let imported = import(&files(&[(
        "interfaces",
        "iface bond0 inet manual\n    bond-slaves eth0 eth1\n    bond-mimon 100\n",
    )]))
    .unwrap();
    assert!(
        imported.warnings[0]
            .starts_with("interfaces:3: unknown option \"mimon\" (did you mean \"miimon\"?)"),
        "{:?}",
        imported.warnings
    );
}

#[test]
fn runbooks_as_guides_print_them_with_sudo_and_continued_lines() {
    let imported = import(&files(&[(
        "runbook.sh",
        "# Create the bond\n\
         sudo nmcli con add type bond ifname bond0 con-name bond0 \\\n    \
             bond.options \"mode=active-backup,miimon=100\"\n\
         sudo nmcli con add type ethernet ifname eth0 master bond0 con-name bond0-port1\n\
         sudo -E /usr/bin/nmcli connection add type bond-slave ifname eth1 master bond0  # port 2\n\
         sudo nmcli con mod bond0 ipv4.addresses \"192.0.2.10/24\" ipv4.method manual\n\
         nmcli c a type bond ifname bond1 con-name \"uplink #2\" \\\n  mode 802.3ad miimon 100\n\
         sudo nmcli con up bond0\n",
    )]))
    .unwrap();
    let b = &imported.bonds[0];
    assert_eq!(b.name, "bond0");
    assert_eq!(
        b.options.mode,
        Mode::ActiveBackup,
        "the continued line counts"
    );
    assert_eq!(b.options.miimon, 100);
    assert_eq!(b.members, ["eth0", "eth1"]);
    assert_eq!(b.addresses, ["192.0.2.10/24"]);
    let b1 = &imported.bonds[1];
    assert_eq!((b1.name.as_str(), b1.options.mode), ("bond1", Mode::Lacp));
    // Nothing dropped silently: the line that brings the bond up is reported.
    assert!(
        imported
            .warnings
            .iter()
            .any(|w| w.starts_with("runbook.sh:9: \"nmcli con up bond0\"")),
        "{:?}",
        imported.warnings
    );
}

#[test]
fn rhel5_modprobe_options_under_the_alias_name_apply_to_that_bond() {
    let imported = import(&files(&[(
        "/etc/modprobe.conf",
        "alias eth0 e1000e\nalias bond0 bonding\noptions bond0 mode=0 miimon=1000\n",
    )]))
    .unwrap();
    let names: Vec<&str> = imported.bonds.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["bond0"]);
    let b = &imported.bonds[0];
    assert_eq!((b.options.mode, b.options.miimon), (Mode::BalanceRr, 1000));
    assert!(imported
        .warnings
        .iter()
        .any(|w| w.contains("/etc/modprobe.conf:1: \"alias eth0 e1000e\" is not about bonding")));
    // Two bonds of their own, the module's options for neither.
    let two = import(&files(&[(
        "modprobe.conf",
        "alias bond0 bonding\nalias bond1 bonding\noptions bond0 mode=1 miimon=100 primary=eth0\n\
         options bond1 mode=4 miimon=100\n",
    )]))
    .unwrap();
    let modes: Vec<Mode> = two.bonds.iter().map(|b| b.options.mode).collect();
    assert_eq!(modes, [Mode::ActiveBackup, Mode::Lacp]);
    let err = import(&files(&[(
        "bonding.conf",
        "options bonding max_bonds=6125\n",
    )]))
    .unwrap_err();
    assert!(err.to_string().contains("at most 64"), "{err}");
}

#[test]
fn ifcfg_lines_not_about_the_bond_are_reported_and_netmask_counts() {
    let imported = import(&files(&[(
        "ifcfg-bond0",
        "DEVICE=bond0\nONBOOT=yes\nBONDING_OPTS=\"mode=1 miimon=100\"\n\
         IPADDR=192.0.2.10\nNETMASK=255.255.255.0\n",
    )]))
    .unwrap();
    assert_eq!(imported.bonds[0].addresses, ["192.0.2.10/24"]);
    assert!(
        imported
            .warnings
            .contains(&"ifcfg-bond0:2: ONBOOT=yes is not about the bond: left out".to_string()),
        "{:?}",
        imported.warnings
    );
}

#[test]
fn ifupdown_bond_lines_that_are_not_bond_options_are_reported() {
    let imported = import(&files(&[(
        "interfaces",
        "auto bond0\niface bond0 inet manual\n    bond-slaves eth0 eth1\n    bond-mode 802.3ad\n\
         \x20   bond-miimon 100\n    mtu 9000\n",
    )]))
    .unwrap();
    assert_eq!(imported.bonds[0].options.mode, Mode::Lacp);
    assert!(
        imported
            .warnings
            .contains(&"interfaces:6: mtu 9000 is not about the bond: left out".to_string()),
        "{:?}",
        imported.warnings
    );
}

#[test]
fn ifupdown_stanzas_and_member_lines_not_about_a_bond_are_reported() {
    let imported = import(&files(&[(
        "interfaces",
        "source /etc/network/interfaces.d/*\n\
         auto lo\niface lo inet loopback\n\
         iface eno1 inet manual\n    mtu 9000\n\
         iface eno2 inet manual\n    bond-master bond0\n\
         iface bond0 inet manual\n    bond-slaves eno1\n    bond-mode 1\n\
         iface eth9 inet dhcp\n",
    )]))
    .unwrap();
    assert_eq!(
        imported.bonds[0].members,
        ["eno2", "eno1"],
        "in stanza order"
    );
    let w = &imported.warnings;
    for expected in [
        "interfaces:1: source /etc/network/interfaces.d/*: bonds in those files are not read",
        "interfaces:3: iface lo is not a bond, a member or a bridge over a bond: left out",
        "interfaces:5: mtu 9000 is on member eno1, not the bond: left out",
        "interfaces:11: iface eth9 is not a bond",
    ] {
        assert!(
            w.iter().any(|l| l.starts_with(expected)),
            "{expected}: {w:?}"
        );
    }
    assert_eq!(w.len(), 4, "{w:?}");
}

#[test]
fn networkd_lines_and_files_not_used_are_reported() {
    let imported = import(&files(&[
        (
            "40-bond0.network",
            "[Match]\nName=bond0\n[Network]\nAddress=192.0.2.10/24\nGateway=192.0.2.1\n",
        ),
        (
            "25-bond0.netdev",
            "[NetDev]\nName=bond0\nKind=bond\nMTUBytes=9000\n[Bond]\nMode=active-backup\n",
        ),
        (
            "30-eno1.network",
            "[Match]\nName=eno1\n[Network]\nBond=bond0\nLinkLocalAddressing=no\n",
        ),
        (
            "50-eth9.network",
            "[Match]\nName=eth9\n[Network]\nDHCP=yes\n",
        ),
        (
            "60-eth8.network",
            "[Match]\nName=eth8\n[Network]\nAddress=198.51.100.1/24\n",
        ),
    ]))
    .unwrap();
    let b = &imported.bonds[0];
    assert_eq!(b.addresses, ["192.0.2.10/24"], "read before its .netdev");
    let w = &imported.warnings;
    for expected in [
        "40-bond0.network:5: [Network] Gateway=192.0.2.1 is not about the bond: left out",
        "25-bond0.netdev:4: [NetDev] MTUBytes=9000 is not about the bond: left out",
        "30-eno1.network:5: [Network] LinkLocalAddressing=no is not about the bond",
        "50-eth9.network: not about a bond",
        "60-eth8.network:4: Address=198.51.100.1/24 is on eth8, which is not a bond: left out",
    ] {
        assert!(
            w.iter().any(|l| l.starts_with(expected)),
            "{expected}: {w:?}"
        );
    }
    assert_eq!(w.len(), 5, "{w:?}");
}

#[test]
fn a_hash_inside_a_value_is_not_a_comment() {
    let imported = import(&files(&[(
        "ifcfg-bond0",
        "# RHEL bond\nDEVICE=bond0\nNAME=\"uplink #1\"\n\
         BONDING_OPTS=\"mode=active-backup miimon=100\" # the primary is eth0\n",
    )]))
    .unwrap();
    let b = &imported.bonds[0];
    assert_eq!(
        (b.options.mode, b.options.miimon),
        (Mode::ActiveBackup, 100)
    );
    let imported = import(&files(&[(
        "bond0.netdev",
        "; systemd comment\n[NetDev]\nName=bond0\nKind=bond\nDescription=uplink #1\n",
    )]))
    .unwrap();
    assert!(
        imported.warnings[0].contains("Description=uplink #1"),
        "{:?}",
        imported.warnings
    );
}
