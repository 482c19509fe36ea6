//! The TOML configuration: one or more bonds, with the kernel's option names.
//!
//! ```toml
//! run_dir = "/run/bond-dp"        # optional
//! metrics = "127.0.0.1:9464"       # optional: Prometheus metrics at http://ADDR/metrics
//!
//! [bond.bond0]
//! members = ["eth0", "eth1"]
//! host = "tap"                     # tap | tap:NAME | xdp:IFACE | none
//! mode = "802.3ad"                 # any option, by its kernel name...
//! miimon = 100
//! lacp_rate = "fast"
//! prio = { eth0 = 10 }             # per-member options as a table
//! arp_ip_target = ["10.0.0.1"]     # lists as arrays
//! options = "xmit_hash_policy=layer3+4"   # ...or an option string, nmcli style
//!
//! [bond.bond0.engine]              # optional: how the data plane runs (see EngineConfig)
//! workers = 2
//! ring_size = 2048
//! xdp_mode = "native"
//! cores = [2, 3]
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::{BondOptions, ConfigError, EngineConfig, Warning};

/// What the bond serves on the host side.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum HostSpec {
    /// A TAP device the kernel stack uses; named after the bond unless given.
    #[default]
    Tap,
    TapNamed(String),
    /// An AF_XDP access port on this interface (bump in the wire).
    Xdp(String),
    /// No host port: the in-process API only.
    None,
}

impl FromStr for HostSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid host \"{s}\" (allowed: tap, tap:NAME, xdp:IFACE, none)");
        match s.split_once(':') {
            None if s == "tap" => Ok(HostSpec::Tap),
            None if s == "none" => Ok(HostSpec::None),
            Some(("tap", name)) if valid_ifname(name) => Ok(HostSpec::TapNamed(name.into())),
            Some(("xdp", iface)) if valid_ifname(iface) => Ok(HostSpec::Xdp(iface.into())),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for HostSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostSpec::Tap => f.write_str("tap"),
            HostSpec::TapNamed(n) => write!(f, "tap:{n}"),
            HostSpec::Xdp(i) => write!(f, "xdp:{i}"),
            HostSpec::None => f.write_str("none"),
        }
    }
}

/// Linux interface names: 1 to 15 bytes, no '/', ':' or white space, not "." or "..".
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace())
}

/// The XDP program's member slots hold the members and, with an access port, that port.
pub fn check_member_count(members: usize, host: &HostSpec) -> Result<(), String> {
    let slots = crate::limits::MAX_MEMBERS as usize;
    let max = match host {
        HostSpec::Xdp(_) => slots - 1,
        _ => slots,
    };
    if members > max {
        let with = if max < slots {
            " with an access port"
        } else {
            ""
        };
        return Err(format!("{members} members: a bond has at most {max}{with}"));
    }
    Ok(())
}

/// One bond, checked: options valid together and with its members.
#[derive(Clone, Debug, PartialEq)]
pub struct BondConfig {
    pub name: String,
    pub members: Vec<String>,
    pub options: BondOptions,
    pub host: HostSpec,
    pub engine: EngineConfig,
    pub warnings: Vec<Warning>,
}

impl BondConfig {
    /// The TAP device the host uses, for a TAP host side.
    pub fn tap_name(&self) -> Option<&str> {
        match &self.host {
            HostSpec::Tap => Some(&self.name),
            HostSpec::TapNamed(name) => Some(name),
            _ => None,
        }
    }

    /// Whether jumbo frames (AF_XDP multi-buffer) are on for this bond.
    pub fn multi_buffer(&self) -> bool {
        self.engine.multi_buffer(self.tap_name().is_some())
    }

    /// The largest member MTU this bond's engine carries.
    pub fn max_mtu(&self) -> u32 {
        self.engine.max_mtu(self.tap_name().is_some())
    }

    /// The AF_XDP access port, for an `xdp:IFACE` host side.
    pub fn access_port(&self) -> Option<&str> {
        match &self.host {
            HostSpec::Xdp(iface) => Some(iface),
            _ => None,
        }
    }

    /// Builds a bond from an option string, as `bond-dp run --options` does.
    pub fn new(
        name: &str,
        members: Vec<String>,
        options: &str,
        host: HostSpec,
    ) -> Result<BondConfig, ConfigError> {
        let mut opts = BondOptions::default();
        for (key, value) in super::options::tokenize(options)? {
            opts.set(&key, &value)?;
        }
        BondConfig::checked(name, members, opts, host)
    }

    /// Sets how the data plane runs the bond, refusing sizes that cannot work together.
    pub fn set_engine(&mut self, engine: EngineConfig) -> Result<(), ConfigError> {
        engine
            .check(self.ports_per_worker())
            .map_err(|message| ConfigError::Bond {
                bond: self.name.clone(),
                message,
            })?;
        self.engine = engine;
        Ok(())
    }

    /// AF_XDP sockets each worker serves: one per member, and the access port's.
    pub fn ports_per_worker(&self) -> usize {
        self.members.len() + usize::from(matches!(self.host, HostSpec::Xdp(_)))
    }

    fn checked(
        name: &str,
        members: Vec<String>,
        mut options: BondOptions,
        host: HostSpec,
    ) -> Result<BondConfig, ConfigError> {
        let bond_error = |message: String| ConfigError::Bond {
            bond: name.to_string(),
            message,
        };
        if !valid_ifname(name) {
            return Err(bond_error(
                "the bond name must be a valid interface name (1-15 characters, no '/', ':' or spaces)".into(),
            ));
        }
        if members.is_empty() {
            return Err(bond_error("no members given".into()));
        }
        for (i, m) in members.iter().enumerate() {
            if !valid_ifname(m) {
                return Err(bond_error(format!(
                    "member \"{m}\" is not a valid interface name"
                )));
            }
            if members[..i].contains(m) {
                return Err(bond_error(format!("member {m} is listed twice")));
            }
            if m == name {
                return Err(bond_error(format!("member {m} has the bond's own name")));
            }
        }
        if let Err(message) = check_member_count(members.len(), &host) {
            return Err(bond_error(message));
        }
        if let HostSpec::Xdp(iface) | HostSpec::TapNamed(iface) = &host {
            if members.contains(iface) {
                return Err(bond_error(format!(
                    "{iface} is a member; it cannot also be the host port ({host})"
                )));
            }
        }
        let mut warnings = options.finish()?;
        warnings.extend(options.check_members(&members)?);
        Ok(BondConfig {
            name: name.to_string(),
            members,
            options,
            host,
            engine: EngineConfig::default(),
            warnings,
        })
    }
}

/// A parsed configuration file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConfigFile {
    pub run_dir: Option<PathBuf>,
    /// Where to serve Prometheus metrics (`metrics = "127.0.0.1:9464"`).
    pub metrics: Option<std::net::SocketAddr>,
    pub bonds: Vec<BondConfig>,
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let origin = path.display().to_string();
        if !super::import::claims(&text) {
            return ConfigFile::parse(&text, &origin);
        }
        // A file another tool wrote: imported as `bond-dp import` would, its warnings
        // carried by every bond it describes.
        let imported =
            super::import::import(&[(origin.clone(), text)]).map_err(|e| ConfigError::File {
                path: origin.clone(),
                message: e.to_string(),
            })?;
        let mut file = ConfigFile::parse(&imported.to_toml(), &origin)?;
        for bond in &mut file.bonds {
            bond.warnings
                .extend(imported.warnings.iter().cloned().map(Warning));
        }
        Ok(file)
    }

    /// Parses TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<ConfigFile, ConfigError> {
        let file_error = |message: String| ConfigError::File {
            path: origin.to_string(),
            message,
        };
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| file_error(e.to_string().trim_end().to_string()))?;
        let mut config = ConfigFile::default();
        for (key, value) in &table {
            match (key.as_str(), value) {
                ("run_dir", toml::Value::String(dir)) => config.run_dir = Some(dir.into()),
                ("metrics", toml::Value::String(addr)) => {
                    config.metrics = Some(addr.parse().map_err(|_| {
                        file_error(format!(
                            "metrics = \"{addr}\": not an address and port (like \"127.0.0.1:9464\")"
                        ))
                    })?)
                }
                ("bond", toml::Value::Table(bonds)) => {
                    for (name, bond) in bonds {
                        let bond = bond
                            .as_table()
                            .ok_or_else(|| file_error(format!("[bond.{name}] must be a table")))?;
                        config
                            .bonds
                            .push(parse_bond(name, bond).map_err(|e| match e {
                                ConfigError::Option(e) => file_error(format!("bond {name}: {e}")),
                                other => file_error(other.to_string()),
                            })?);
                    }
                }
                (other, _) => {
                    return Err(file_error(format!(
                        "unknown top-level key \"{other}\" (allowed: run_dir, metrics, [bond.NAME] tables)"
                    )))
                }
            }
        }
        if config.bonds.is_empty() {
            return Err(file_error(
                "no bonds defined (add a [bond.NAME] table)".into(),
            ));
        }
        Ok(config)
    }

    pub fn bond(&self, name: &str) -> Option<&BondConfig> {
        self.bonds.iter().find(|b| b.name == name)
    }
}

fn parse_bond(name: &str, table: &toml::Table) -> Result<BondConfig, ConfigError> {
    let mut members = Vec::new();
    let mut host = HostSpec::default();
    let mut options = BondOptions::default();
    let mut engine = EngineConfig::default();
    let bond_error = |message: String| ConfigError::Bond {
        bond: name.to_string(),
        message,
    };
    for (key, value) in table {
        match key.as_str() {
            "members" => {
                members = value
                    .as_array()
                    .and_then(|a| a.iter().map(|v| v.as_str().map(String::from)).collect())
                    .ok_or_else(|| {
                        bond_error("members must be an array of interface names".into())
                    })?;
            }
            "host" => {
                host = value
                    .as_str()
                    .ok_or_else(|| bond_error("host must be a string".into()))?
                    .parse()
                    .map_err(bond_error)?;
            }
            "engine" => {
                let settings = value.as_table().ok_or_else(|| {
                    bond_error("engine must be a table: [bond.NAME.engine]".into())
                })?;
                for (setting, v) in settings {
                    let text = option_values(v)
                        .map_err(|what| bond_error(format!("engine {setting}: {what}")))?
                        .join(",");
                    engine
                        .set(setting, &text)
                        .map_err(|e| bond_error(e.to_string()))?;
                }
            }
            "options" => {
                let text = value
                    .as_str()
                    .ok_or_else(|| bond_error("options must be an option string".into()))?;
                for (k, v) in super::options::tokenize(text)? {
                    options.set(&k, &v)?;
                }
            }
            option => {
                for text in option_values(value).map_err(|what| {
                    bond_error(format!("option {option}: {what} is not a valid value"))
                })? {
                    options.set(option, &text)?;
                }
            }
        }
    }
    let mut bond = BondConfig::checked(name, members, options, host)?;
    bond.set_engine(engine)?;
    Ok(bond)
}

/// The option-string forms of a TOML value: scalars as text, arrays one per item,
/// per-member tables as `IF:N`.
fn option_values(value: &toml::Value) -> Result<Vec<String>, &'static str> {
    let scalar = |v: &toml::Value| match v {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Boolean(b) => Ok(if *b { "1" } else { "0" }.to_string()),
        _ => Err("a float, date or nested value"),
    };
    match value {
        toml::Value::Array(items) => items.iter().map(scalar).collect(),
        toml::Value::Table(t) => t
            .iter()
            .map(|(k, v)| scalar(v).map(|v| format!("{k}:{v}")))
            .collect(),
        v => Ok(vec![scalar(v)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{HashPolicy, Mode};

    const TWO_BONDS: &str = r#"
run_dir = "/tmp/bond-dp-test"

[bond.bond0]
members = ["eth0", "eth1"]
mode = "802.3ad"
miimon = 100
lacp_rate = "fast"
xmit_hash_policy = "layer3+4"

[bond.uplink]
members = ["eth2", "eth3"]
host = "xdp:veth9"
options = "mode=active-backup,miimon=50"
primary = "eth3"
prio = { eth2 = 5 }
"#;

    #[test]
    fn two_bonds() {
        let c = ConfigFile::parse(TWO_BONDS, "test.toml").unwrap();
        assert_eq!(c.run_dir.as_deref(), Some(Path::new("/tmp/bond-dp-test")));
        let b = c.bond("bond0").unwrap();
        assert_eq!(b.options.mode, Mode::Lacp);
        assert_eq!(b.options.xmit_hash_policy, HashPolicy::Layer34);
        assert_eq!(b.host, HostSpec::Tap);
        let u = c.bond("uplink").unwrap();
        assert_eq!(u.options.primary.as_deref(), Some("eth3"));
        assert_eq!(u.options.prio.get("eth2"), Some(&5));
        assert_eq!(u.host, HostSpec::Xdp("veth9".into()));
        // The same bond from the command-line form.
        let cli = BondConfig::new(
            "bond0",
            vec!["eth0".into(), "eth1".into()],
            "mode=802.3ad,miimon=100,lacp_rate=fast,xmit_hash_policy=layer3+4",
            HostSpec::Tap,
        )
        .unwrap();
        assert_eq!(&cli, b);
    }

    #[test]
    fn errors_name_the_file_bond_and_option() {
        let bad = TWO_BONDS.replace("miimon = 100", "mimon = 100");
        assert_eq!(
            ConfigFile::parse(&bad, "test.toml")
                .unwrap_err()
                .to_string(),
            "test.toml: bond bond0: unknown option \"mimon\" (did you mean \"miimon\"?)"
        );
        let bad = TWO_BONDS.replace("primary = \"eth3\"", "primary = \"eth7\"");
        assert!(ConfigFile::parse(&bad, "t.toml")
            .unwrap_err()
            .to_string()
            .contains("option primary=eth7: eth7 is not a member"));
        let err = ConfigFile::parse("[bond.b]\nmembers = [\"a\"\n", "t.toml").unwrap_err();
        assert!(err.to_string().starts_with("t.toml: "), "{err}");
        assert!(ConfigFile::parse("", "t.toml")
            .unwrap_err()
            .to_string()
            .contains("no bonds"));
    }

    #[test]
    fn bond_and_member_names() {
        let members = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let err = |name: &str, m: &[&str]| {
            BondConfig::new(name, members(m), "mode=1 miimon=100", HostSpec::None)
                .unwrap_err()
                .to_string()
        };
        assert!(err("bond0", &[]).contains("no members"));
        assert!(err("bond0", &["a", "a"]).contains("listed twice"));
        assert!(err("a-very-long-bond-name", &["a"]).contains("valid interface name"));
        assert!(err("bond0", &["bad/name"]).contains("not a valid interface name"));
        let access = BondConfig::new(
            "bond9",
            members(&["a", "b"]),
            "mode=1 miimon=100",
            HostSpec::Xdp("a".into()),
        );
        assert!(access
            .unwrap_err()
            .to_string()
            .contains("a is a member; it cannot also be the host port (xdp:a)"));
    }

    #[test]
    fn host_specs() {
        for s in ["tap", "tap:bond9", "xdp:veth0", "none"] {
            assert_eq!(s.parse::<HostSpec>().unwrap().to_string(), s);
        }
        assert!("tun".parse::<HostSpec>().is_err());
        assert!("xdp:".parse::<HostSpec>().is_err());
    }
}
