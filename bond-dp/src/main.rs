//! The `bond-dp` command: run bonds, read their status, and compute transmit hashes.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use bond_dp::config::{BondConfig, BondOptions, ConfigFile, EngineConfig, HostSpec};
use bond_dp::control::socket::{list_bonds, query};
use bond_dp::control::{BondStatus, Request};
use bond_dp::daemon;
use bond_dp::policy::{Decision, Mode, TxSelector, TxSnapshot};
use bond_dp::wire::from_hex;

/// bond-dp: a userspace NIC bonding data plane with the Linux bonding driver's modes,
/// options and status page.
/// The version and the commit it was built from: "0.1.0 (git 1a2b3c4d5e6f)".
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("BOND_DP_GIT"),
    ")"
);

#[derive(Parser)]
#[command(name = "bond-dp", version = VERSION, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one bond from the command line, or the bonds of a config file.
    Run(Box<RunArgs>),
    /// Show running bonds as /proc/net/bonding does.
    Status(StatusArgs),
    /// Show running bonds' members with their live packet and bit rates, refreshed.
    Watch(WatchArgs),
    /// Change an option of a running bond: `bond-dp set bond0 active_slave eth1`.
    Set(SetArgs),
    /// Print the member and 32-bit transmit hash the kernel formula gives for frames.
    Hash(HashArgs),
    /// Turn bonds written for other tools into bond-dp's TOML
    ///
    /// Reads ifcfg files, modprobe options, nmcli command lines, systemd-networkd
    /// .netdev/.network files and /etc/network/interfaces; prints the TOML on standard
    /// output, and warnings (unknown keys, with file, line and the nearest option) on
    /// standard error too.
    Import(ImportArgs),
    /// Write the man pages and shell completions (for packages)
    #[command(hide = true)]
    Generate(GenerateArgs),
}

#[derive(Args)]
struct ImportArgs {
    /// The files: ifcfg-* (bond and members), modprobe .conf, nmcli command lines, .netdev
    /// and .network files, /etc/network/interfaces. `run --config` takes one such file too.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    /// Bond name (also the TAP device's default name); with --config, selects one bond.
    #[arg(long)]
    bond: Option<String>,
    /// Member interfaces, comma separated, in enslave order.
    #[arg(long, value_delimiter = ',', conflicts_with = "config")]
    members: Vec<String>,
    /// Bonding options as nmcli or BONDING_OPTS write them: "mode=802.3ad,miimon=100".
    #[arg(long, default_value = "", conflicts_with = "config")]
    options: String,
    /// Host side: tap, tap:NAME, xdp:IFACE or none.
    #[arg(long, default_value = "tap", conflicts_with = "config")]
    host: String,
    /// A TOML file with one or more [bond.NAME] tables.
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    engine: EngineArgs,
    /// Where control sockets live.
    #[arg(long, env = "BOND_DP_RUN_DIR")]
    run_dir: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics (ADDR like 127.0.0.1:9464).
    #[arg(long)]
    metrics: Option<std::net::SocketAddr>,
    /// Check the configuration, print it, and exit.
    #[arg(long)]
    dry_run: bool,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, default_value = "info", env = "BOND_DP_LOG")]
    log_level: String,
}

/// How the data plane runs the command-line bond ([bond.NAME.engine] in a config file).
#[derive(Args)]
struct EngineArgs {
    /// Poll-mode worker threads; each serves its share of every member's queues.
    #[arg(long, conflicts_with = "config")]
    workers: Option<String>,
    /// Queues served per member: N, or all (default).
    #[arg(long, conflicts_with = "config")]
    queues: Option<String>,
    /// UMEM frames per worker (a power of two), or auto (default: sized from the rings).
    #[arg(long, conflicts_with = "config")]
    frames: Option<String>,
    /// UMEM frame size: 2048 (default) or 4096.
    #[arg(long, conflicts_with = "config")]
    frame_size: Option<String>,
    /// Entries per AF_XDP ring (a power of two; default 1024).
    #[arg(long, conflicts_with = "config")]
    ring_size: Option<String>,
    /// XDP attach mode: auto (default), native or generic.
    #[arg(long, conflicts_with = "config")]
    xdp_mode: Option<String>,
    /// AF_XDP copy mode: auto (default), zero-copy or copy.
    #[arg(long, conflicts_with = "config")]
    copy_mode: Option<String>,
    /// Cores for the workers, comma separated (default: the last cores).
    #[arg(long, conflicts_with = "config")]
    cores: Option<String>,
    /// Member carrier: fast (default: link notifications and a look every 250 µs), or
    /// miimon (a look every miimon ms only, as the kernel's bond does).
    #[arg(long, conflicts_with = "config")]
    carrier_watch: Option<String>,
    /// Jumbo frames (MTU up to 9216) as chains of UMEM frames: auto (default: on for a TAP
    /// host side), on, or off (frames fit one UMEM frame; MTU up to frame_size less 274).
    #[arg(long, conflicts_with = "config")]
    jumbo: Option<String>,
}

impl EngineArgs {
    fn to_config(&self) -> Result<EngineConfig, Failure> {
        let mut engine = EngineConfig::default();
        for (name, value) in [
            ("workers", &self.workers),
            ("queues", &self.queues),
            ("frames", &self.frames),
            ("frame_size", &self.frame_size),
            ("ring_size", &self.ring_size),
            ("xdp_mode", &self.xdp_mode),
            ("copy_mode", &self.copy_mode),
            ("cores", &self.cores),
            ("carrier_watch", &self.carrier_watch),
            ("jumbo", &self.jumbo),
        ] {
            if let Some(value) = value {
                engine.set(name, value).map_err(bad_input)?;
            }
        }
        Ok(engine)
    }
}

#[derive(Args)]
struct StatusArgs {
    /// The bond to show; all running bonds when left out.
    name: Option<String>,
    /// JSON instead of the /proc/net/bonding text.
    #[arg(long)]
    json: bool,
    #[arg(long, env = "BOND_DP_RUN_DIR", default_value = daemon::DEFAULT_RUN_DIR)]
    run_dir: PathBuf,
}

#[derive(Args)]
struct WatchArgs {
    /// The bond to watch; all running bonds when left out.
    name: Option<String>,
    /// Seconds between refreshes.
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// Stop after this many refreshes (default: until interrupted).
    #[arg(long)]
    count: Option<u32>,
    #[arg(long, env = "BOND_DP_RUN_DIR", default_value = daemon::DEFAULT_RUN_DIR)]
    run_dir: PathBuf,
}

#[derive(Args)]
struct SetArgs {
    /// The running bond.
    bond: String,
    /// The option, as in --options (active_slave, primary, miimon, ...); OPTION=VALUE also
    /// works.
    option: String,
    /// The new value (empty clears active_slave or primary); for slaves, +IF adds a member
    /// and -IF removes one.
    #[arg(allow_hyphen_values = true)]
    value: Option<String>,
    #[arg(long, env = "BOND_DP_RUN_DIR", default_value = daemon::DEFAULT_RUN_DIR)]
    run_dir: PathBuf,
}

#[derive(Args)]
struct HashArgs {
    /// Options; the mode defaults to balance-xor: "xmit_hash_policy=layer3+4".
    #[arg(long, default_value = "")]
    options: String,
    /// Number of members, all up.
    #[arg(long)]
    members: usize,
    /// A frame in hex, from the Ethernet header on. Repeatable; "-" reads one per line from
    /// standard input.
    #[arg(long, required = true)]
    frame: Vec<String>,
}

/// A failure with its exit code: 2 for bad input, 1 for anything else.
struct Failure(u8, String);

fn bad_input(e: impl std::fmt::Display) -> Failure {
    Failure(2, e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(*args),
        Command::Status(args) => status(args),
        Command::Watch(args) => watch(args),
        Command::Set(args) => set(args),
        Command::Hash(args) => hash(args),
        Command::Import(args) => import(args),
        Command::Generate(args) => generate(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, message)) => {
            eprintln!("bond-dp: error: {message}");
            ExitCode::from(code)
        }
    }
}

/// Whether stderr is connected to the journal ($JOURNAL_STREAM names its device and inode).
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.split_once(':') else {
        return false;
    };
    let stderr = std::fs::metadata("/proc/self/fd/2");
    stderr.is_ok_and(|m| dev.parse() == Ok(m.dev()) && ino.parse() == Ok(m.ino()))
}

/// The bonds of a config file: every one, or the one `--bond` names.
fn bonds_of(
    file: &ConfigFile,
    path: &std::path::Path,
    only: Option<&str>,
) -> Result<Vec<BondConfig>, String> {
    match only {
        Some(name) => file
            .bond(name)
            .cloned()
            .map(|b| vec![b])
            .ok_or_else(|| format!("{}: no bond named {name}", path.display())),
        None => Ok(file.bonds.clone()),
    }
}

fn run(args: RunArgs) -> Result<(), Failure> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level).map_err(|_| {
        bad_input(format!(
            "invalid --log-level \"{}\" (allowed: error, warn, info, debug, trace)",
            args.log_level
        ))
    })?;
    // A thread of its own writes the logs; when stderr stalls (a full pipe nobody reads, a
    // journal that lags) lines are dropped rather than the monitor blocked under a bond's
    // lock. The guard flushes what is queued when `run` returns.
    let (writer, _flush_at_exit) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .thread_name("log")
        .finish(std::io::stderr());
    // Under systemd with stderr on the journal, the journal's own protocol: bond and member
    // become fields of their own (journalctl BOND=bond0 MEMBER=eno1), without the crate's
    // default "F_" prefix. Plain text otherwise.
    let journal = stderr_is_journal()
        .then(|| tracing_journald::layer().ok())
        .flatten()
        .map(|layer| layer.with_field_prefix(None));
    {
        use tracing_subscriber::prelude::*;
        let registry = tracing_subscriber::registry().with(filter);
        match journal {
            Some(journal) => registry.with(journal).init(),
            None => registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_ansi(std::io::stderr().is_terminal())
                        .with_writer(writer),
                )
                .init(),
        }
    }

    let (configs, config_run_dir, config_metrics) = match &args.config {
        Some(path) => {
            let file = ConfigFile::load(path).map_err(bad_input)?;
            let bonds = bonds_of(&file, path, args.bond.as_deref()).map_err(bad_input)?;
            (bonds, file.run_dir, file.metrics)
        }
        None => {
            let name = args
                .bond
                .as_deref()
                .ok_or_else(|| bad_input("--bond NAME is required (or --config FILE)"))?;
            if args.members.is_empty() {
                return Err(bad_input("--members IF[,IF...] is required"));
            }
            let host: HostSpec = args.host.parse().map_err(bad_input)?;
            let mut bond = BondConfig::new(name, args.members.clone(), &args.options, host)
                .map_err(bad_input)?;
            bond.set_engine(args.engine.to_config()?)
                .map_err(bad_input)?;
            (vec![bond], None, None)
        }
    };
    daemon::check_cores(&configs).map_err(bad_input)?;
    if args.dry_run {
        for b in &configs {
            println!(
                "bond {}: members {}; host {}; {}",
                b.name,
                b.members.join(","),
                b.host,
                b.options.to_option_string()
            );
            println!("  engine: {}", b.engine);
            for w in &b.warnings {
                println!("  warning: {w}");
            }
        }
        return Ok(());
    }
    daemon::check_privileges().map_err(|e| Failure(1, e))?;
    let run_dir = daemon::run_dir(args.run_dir, config_run_dir);
    let bonds = daemon::prepare(configs, &run_dir).map_err(|e| match e {
        // Another process holds it: not the input's fault.
        daemon::DaemonError::AlreadyRunning { .. } | daemon::DaemonError::HeldElsewhere { .. } => {
            Failure(1, e.to_string())
        }
        e => bad_input(e),
    })?;
    // SIGHUP (systemctl reload) reads the same file again.
    let reload: Option<daemon::Reload> = args.config.clone().map(|path| {
        let only = args.bond.clone();
        Box::new(move || {
            let file = ConfigFile::load(&path).map_err(|e| e.to_string())?;
            bonds_of(&file, &path, only.as_deref())
        }) as daemon::Reload
    });
    daemon::run(bonds, &run_dir, args.metrics.or(config_metrics), reload)
        .map_err(|e| Failure(1, e.to_string()))
}

fn set(args: SetArgs) -> Result<(), Failure> {
    let (name, value) = match (args.option.split_once('='), args.value) {
        (Some((name, value)), None) => (name.to_string(), value.to_string()),
        (None, Some(value)) => (args.option, value),
        (None, None) => (args.option, String::new()),
        (Some(_), Some(_)) => {
            return Err(Failure(
                2,
                format!(
                    "give the value once: `{}` or `{} VALUE`",
                    args.option, args.option
                ),
            ))
        }
    };
    let answer = query(&args.run_dir, &args.bond, &Request::Set { name, value })
        .map_err(|e| Failure(1, e.to_string()))?;
    match answer.strip_prefix("error: ") {
        Some(reason) => Err(Failure(
            1,
            format!("bond {}: {}", args.bond, reason.trim_end()),
        )),
        None => {
            for line in answer.lines().filter(|l| *l != "ok") {
                eprintln!("bond-dp: {line}");
            }
            Ok(())
        }
    }
}

/// The bond named, or every running bond.
fn bond_names(name: Option<String>, run_dir: &Path) -> Result<Vec<String>, Failure> {
    if let Some(name) = name {
        return Ok(vec![name]);
    }
    let names = list_bonds(run_dir).unwrap_or_default();
    if names.is_empty() {
        return Err(Failure(
            1,
            format!(
                "no bonds running (no control sockets in {})",
                run_dir.display()
            ),
        ));
    }
    Ok(names)
}

fn watch(args: WatchArgs) -> Result<(), Failure> {
    if args.interval.is_nan() || args.interval <= 0.0 {
        return Err(bad_input(format!(
            "--interval {}: must be more than 0 seconds",
            args.interval
        )));
    }
    let names = bond_names(args.name, &args.run_dir)?;
    let read = |name: &String| -> Result<BondStatus, Failure> {
        let json = query(&args.run_dir, name, &Request::StatusJson)
            .map_err(|e| Failure(1, e.to_string()))?;
        serde_json::from_str(&json).map_err(|e| Failure(1, format!("bond {name}: {e}")))
    };
    let mut prev: Vec<Option<BondStatus>> = vec![None; names.len()];
    let mut last = std::time::Instant::now();
    let mut shown = 0;
    loop {
        let elapsed = last.elapsed().as_secs_f64();
        last = std::time::Instant::now();
        let mut page = String::new();
        for (name, prev) in names.iter().zip(prev.iter_mut()) {
            let cur = read(name)?;
            page += &bond_dp::control::watch::table(prev.as_ref(), &cur, elapsed);
            page.push('\n');
            *prev = Some(cur);
        }
        if std::io::stdout().is_terminal() {
            print!("\x1b[2J\x1b[H");
        }
        print!("{page}");
        shown += 1;
        if args.count.is_some_and(|c| shown >= c) {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_secs_f64(args.interval));
    }
}

fn status(args: StatusArgs) -> Result<(), Failure> {
    let request = if args.json {
        Request::StatusJson
    } else {
        Request::Status
    };
    // Without a name, every bond's page under its name, as `head /proc/net/bonding/*`
    // shows the kernel's.
    let titled = args.name.is_none() && !args.json;
    let names = bond_names(args.name, &args.run_dir)?;
    let mut answers = Vec::new();
    for name in &names {
        let page = query(&args.run_dir, name, &request).map_err(|e| Failure(1, e.to_string()))?;
        answers.push(if titled {
            format!("==> {name} <==\n{page}")
        } else {
            page
        });
    }
    if args.json && names.len() > 1 {
        println!(
            "[{}]",
            answers
                .iter()
                .map(|a| a.trim_end())
                .collect::<Vec<_>>()
                .join(",\n")
        );
    } else {
        print!("{}", answers.join("\n"));
    }
    Ok(())
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// Where the man pages go (bond-dp.8, bond-dp-SUBCOMMAND.8).
    #[arg(long)]
    man: Option<PathBuf>,
    /// Where the bash, zsh and fish completions go.
    #[arg(long)]
    completions: Option<PathBuf>,
}

/// Man pages and completions from the command line's own definition, so they never drift.
fn generate(args: GenerateArgs) -> Result<(), Failure> {
    use clap::CommandFactory;
    let io = |e: std::io::Error| Failure(1, e.to_string());
    let cli = Cli::command();
    if let Some(dir) = &args.man {
        std::fs::create_dir_all(dir).map_err(io)?;
        let page = |cmd: clap::Command, name: String| -> Result<(), Failure> {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd.name(name.clone()))
                .section("8")
                .render(&mut out)
                .map_err(io)?;
            std::fs::write(dir.join(format!("{name}.8")), out).map_err(io)
        };
        page(cli.clone(), "bond-dp".into())?;
        for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
            page(sub.clone(), format!("bond-dp-{}", sub.get_name()))?;
        }
    }
    if let Some(dir) = &args.completions {
        std::fs::create_dir_all(dir).map_err(io)?;
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            clap_complete::generate_to(shell, &mut cli.clone(), "bond-dp", dir).map_err(io)?;
        }
    }
    Ok(())
}

fn import(args: ImportArgs) -> Result<(), Failure> {
    let mut files = Vec::new();
    for path in &args.files {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure(1, format!("{}: {e}", path.display())))?;
        files.push((path.display().to_string(), text));
    }
    let imported = bond_dp::config::import::import(&files).map_err(bad_input)?;
    for w in &imported.warnings {
        eprintln!("bond-dp: warning: {w}");
    }
    print!("{}", imported.to_toml());
    Ok(())
}

fn hash(args: HashArgs) -> Result<(), Failure> {
    if args.members == 0 {
        return Err(bad_input("--members must be at least 1"));
    }
    let mut options = BondOptions::default();
    options.set("mode", "balance-xor").map_err(bad_input)?;
    for (key, value) in bond_dp::config::tokenize(&args.options).map_err(bad_input)? {
        options.set(&key, &value).map_err(bad_input)?;
    }
    options.finish().map_err(bad_input)?;
    let snap = TxSnapshot::all_up(args.members);
    let mut selector = TxSelector::new(
        options.mode,
        options.xmit_hash_policy,
        options.packets_per_slave,
        options.tlb_dynamic_lb,
        1,
    );
    let mut frames = Vec::new();
    for f in &args.frame {
        if f == "-" {
            for line in std::io::stdin().lock().lines() {
                let line = line.map_err(|e| Failure(1, e.to_string()))?;
                if !line.trim().is_empty() {
                    frames.push(line);
                }
            }
        } else {
            frames.push(f.clone());
        }
    }
    let mut out = String::new();
    for (i, text) in frames.iter().enumerate() {
        let frame = from_hex(text).map_err(|e| bad_input(format!("frame {}: {e}", i + 1)))?;
        let hash = options.xmit_hash_policy.hash(&frame);
        let member = match selector.select(&frame, &snap) {
            Decision::Send { member, .. } => member.to_string(),
            Decision::AllUsable => "all".to_string(),
            Decision::Drop => "none".to_string(),
        };
        debug_assert!(
            options.mode != Mode::BalanceXor
                || member == (hash as usize % args.members).to_string()
        );
        out.push_str(&format!("{member} 0x{hash:08x}\n"));
    }
    print!("{out}");
    Ok(())
}
