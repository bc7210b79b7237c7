//! The `aduan` command: `serve`, `check-config`, `import-transcripts`, `spool`, `blobs`.

use std::path::PathBuf;
use std::process::ExitCode;

use aduan::settings::Config;
use clap::{Parser, Subcommand};

// A request allocates and frees many small objects across two worker threads;
// mimalloc's thread-local free lists cost a fraction of glibc's malloc here
// (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "aduan",
    version,
    about = "Multi-channel ingestion gateway for public complaint systems"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway until SIGTERM or SIGINT.
    Serve {
        /// Configuration file (default: $ADUAN_CONFIG, else config/aduan.toml).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Check a configuration file and report every problem with its location.
    CheckConfig {
        /// Configuration file (default: $ADUAN_CONFIG, else config/aduan.toml).
        file: Option<PathBuf>,
    },
    /// Import a call center's transcript export (JSON Lines, one transcript per
    /// line). Bad lines are reported and skipped; re-running a file adds nothing.
    /// Exits 0 when every line was accepted or a duplicate, 2 when some were rejected.
    ImportTranscripts {
        /// The JSON Lines file.
        file: PathBuf,
        /// The transcript instance (call center) the file comes from.
        #[arg(long)]
        instance: String,
        /// Configuration file (default: $ADUAN_CONFIG, else config/aduan.toml).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Inspect or forward the local spool (complaints kept while Redis was unavailable).
    Spool {
        #[command(subcommand)]
        command: SpoolCommand,
        /// Configuration file (default: $ADUAN_CONFIG, else config/aduan.toml).
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
    },
    /// Sign blob URLs for the core system, or delete a stored attachment.
    Blobs {
        #[command(subcommand)]
        command: BlobsCommand,
        /// Configuration file (default: $ADUAN_CONFIG, else config/aduan.toml).
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum BlobsCommand {
    /// Print a signed, expiring path for KEY
    /// (`/v1/blobs/KEY?expires=…&signature=…`), made with `[blobs] signing_key`.
    Sign {
        /// The storage key, `sha256/<hex>`.
        key: String,
        /// How long the URL stays valid: 30s, 10m, 2h, 1d.
        #[arg(long, default_value = "10m", value_parser = aduan::blobs::parse_ttl)]
        ttl: std::time::Duration,
        /// Print a whole URL under this base, e.g. https://aduan.example.go.id.
        #[arg(long)]
        base: Option<String>,
    },
    /// Delete KEY from the blob store (a citizen's file, on request). Prints
    /// `deleted KEY` or `absent KEY`; both exit 0.
    Delete {
        /// The storage key, `sha256/<hex>`.
        key: String,
    },
}

#[derive(Subcommand)]
enum SpoolCommand {
    /// Print the number of waiting complaints, their size, the age of the oldest
    /// and the number of quarantined records. Works while the gateway runs.
    Status {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Forward every waiting complaint to Redis (each still written once), then
    /// exit: 0 when the spool is empty, 1 when Redis failed first. Refused while
    /// a gateway has the spool open: it forwards by itself.
    Drain,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => check_config(Config::path_from(file)),
        Command::Serve { config } => run(serve(Config::path_from(config))),
        Command::ImportTranscripts {
            file,
            instance,
            config,
        } => run(import(Config::path_from(config), file, instance)),
        Command::Spool { command, config } => run(spool(Config::path_from(config), command)),
        Command::Blobs { command, config } => run(blobs(Config::path_from(config), command)),
    }
}

async fn spool(path: PathBuf, command: SpoolCommand) -> anyhow::Result<ExitCode> {
    let config = Config::load(&path).map_err(|e| anyhow::anyhow!("{}:\n{e}", path.display()))?;
    match command {
        SpoolCommand::Status { json } => {
            let status = match aduan::spool::Spool::status_of(&config.spool) {
                Ok(s) => serde_json::to_value(s)?,
                // The running gateway holds the file; it reports the same figures.
                Err(aduan::spool::SpoolError::InUse { .. }) => {
                    running_spool_status(config.server.listen).await?
                }
                Err(e) => return Err(e.into()),
            };
            if json {
                println!("{}", serde_json::to_string(&status)?);
            } else {
                println!("spool: {}", config.spool.path().display());
                println!("depth: {} ({} bytes)", status["depth"], status["bytes"]);
                match status["oldest_age_seconds"].as_f64() {
                    Some(age) => println!("oldest: {age:.1} s"),
                    None => println!("oldest: -"),
                }
                println!("quarantined: {}", status["quarantined"]);
                if let Some(rate) = status["drain_rate_per_second"].as_f64() {
                    println!(
                        "drained: {} since the gateway started, {rate:.1}/s over the last 10 s",
                        status["drained_total"]
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        SpoolCommand::Drain => {
            aduan::telemetry::init_logging(&config.log);
            let spool = aduan::spool::Spool::open(&config.spool)?;
            let redis = std::sync::Arc::new(aduan::redis::Redis::new(&config.redis)?);
            let language = aduan::language::LanguageDetector::new(&config.language)
                .map_err(|e| anyhow::anyhow!("language: {e}"))?;
            // Spooled opt-outs and delivery reports go where the gateway records them.
            let reports = aduan::outbound::reports::Reports::new(
                redis.clone(),
                &config.outbound.delivery_stream,
                &config.outbound.events_stream,
            );
            let target = aduan::spool::Target {
                redis: &redis,
                language: &language,
                reports: Some(&reports),
            };
            let before = spool.status().depth;
            let started = std::time::Instant::now();
            let result = spool.drain(target).await;
            let status = spool.status();
            let forwarded = before.saturating_sub(status.depth);
            let secs = started.elapsed().as_secs_f64();
            println!(
                "forwarded {forwarded} in {secs:.2} s; {} waiting, {} quarantined",
                status.depth, status.quarantined
            );
            match result {
                Ok(_) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    eprintln!("aduan: stopped: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

async fn blobs(path: PathBuf, command: BlobsCommand) -> anyhow::Result<ExitCode> {
    let config = Config::load(&path).map_err(|e| anyhow::anyhow!("{}:\n{e}", path.display()))?;
    let valid = |key: &str| {
        if aduan::blobs::is_valid_key(key) {
            Ok(())
        } else {
            Err(anyhow::anyhow!(
                "`{key}` is not a storage key (sha256/<64 lowercase hex>)"
            ))
        }
    };
    match command {
        BlobsCommand::Sign { key, ttl, base } => {
            valid(&key)?;
            let secret = config.blobs.signing_key.as_ref().ok_or_else(|| {
                anyhow::anyhow!("{}: [blobs] signing_key is not set", path.display())
            })?;
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
            let expires = now.as_secs().saturating_add(ttl.as_secs());
            let signed = aduan::blobs::signed_path(&key, expires, secret);
            match base {
                Some(base) => println!("{}{signed}", base.trim_end_matches('/')),
                None => println!("{signed}"),
            }
        }
        BlobsCommand::Delete { key } => {
            valid(&key)?;
            let store = aduan::blobs::BlobStore::new(&config.blobs)?;
            if store.delete(&key).await? {
                println!("deleted {key}");
            } else {
                println!("absent {key}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a command's future on a fresh runtime and turns its result into an exit code.
fn run(fut: impl std::future::Future<Output = anyhow::Result<ExitCode>>) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("aduan: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fut) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("aduan: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn import(path: PathBuf, file: PathBuf, instance: String) -> anyhow::Result<ExitCode> {
    let config = Config::load(&path).map_err(|e| anyhow::anyhow!("{}:\n{e}", path.display()))?;
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let summary = aduan::import::import_transcripts(&config, &file, &instance, progress).await?;
    print!("{summary}");
    Ok(if summary.rejected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// The spool figures of the gateway listening at `listen`, from its `/readyz`.
async fn running_spool_status(listen: std::net::SocketAddr) -> anyhow::Result<serde_json::Value> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(format!("GET /readyz HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        anyhow::Ok(answer)
    };
    let answer = tokio::time::timeout(std::time::Duration::from_secs(5), exchange)
        .await
        .map_err(|_| anyhow::anyhow!("the gateway at {addr} did not answer"))?
        .map_err(|e| {
            anyhow::anyhow!("the spool is in use but the gateway at {addr} cannot be asked: {e}")
        })?;
    let body = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| &answer[i + 4..])
        .ok_or_else(|| anyhow::anyhow!("unexpected answer from {addr}"))?;
    let ready: serde_json::Value = serde_json::from_slice(body)?;
    match ready.get("spool") {
        Some(spool) if spool.is_object() => Ok(spool.clone()),
        _ => anyhow::bail!("the gateway at {addr} reports no spool"),
    }
}

fn check_config(path: PathBuf) -> ExitCode {
    match aduan::instances::check_file(&path) {
        Ok(instances) => {
            println!(
                "{}: ok ({} instance{})",
                path.display(),
                instances,
                if instances == 1 { "" } else { "s" }
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            eprintln!("{}: {} problem(s)", path.display(), errors.0.len());
            ExitCode::FAILURE
        }
    }
}

async fn serve(path: PathBuf) -> anyhow::Result<ExitCode> {
    let config = Config::load(&path).map_err(|e| anyhow::anyhow!("{}:\n{e}", path.display()))?;
    aduan::telemetry::init_logging(&config.log);
    let listener = tokio::net::TcpListener::bind(config.server.listen).await?;
    let running = aduan::server::start(config, listener).await?;
    shutdown_signal().await;
    tracing::info!("shutting down: no new requests, finishing in-flight work");
    running.stop().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
