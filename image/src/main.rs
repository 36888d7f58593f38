//! `scopegate-image`: the scopegate filter as OCI images in the two layouts Istio's and
//! Envoy Gateway's image fetchers accept, written as OCI image layout directories that
//! `skopeo copy oci:DIR docker://…` pushes. `scripts/build-image` runs it.
//!
//! Reproducible: the same module, revision, version and time give the same bytes and so the
//! same digests (no clock is read, tar headers and gzip carry fixed values, JSON keys are
//! sorted).
//!
//! Exit codes: 0 written, 2 a usage error or an input or output that failed.

#![deny(clippy::unwrap_used, clippy::expect_used)]

mod error;
mod layout;
mod variant;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use error::Error;
use variant::{Annotations, Variant};

/// Package the scopegate filter as OCI images ("compat" and "oci" layouts)
///
/// Writes OUT/compat and OUT/oci, each an OCI image layout directory with one image, and
/// prints the digest of each image and of the module.
#[derive(Debug, Parser)]
#[command(name = "scopegate-image", version)]
struct Args {
    /// The filter module (scripts/build-filter writes target/filter/scopegate_filter.wasm)
    #[arg(long, value_name = "FILE")]
    wasm: PathBuf,

    /// The directory to write OUT/compat and OUT/oci into (both are replaced)
    #[arg(long, value_name = "OUT")]
    out: PathBuf,

    /// The source revision (org.opencontainers.image.revision), e.g. the git commit
    #[arg(long)]
    revision: String,

    /// The build time as seconds since 1970 (org.opencontainers.image.created; tar mtimes),
    /// e.g. SOURCE_DATE_EPOCH or the commit time: never the clock, so builds repeat
    #[arg(long, value_name = "SECONDS")]
    created: u64,

    /// The version (org.opencontainers.image.version) and the tag of the image in its layout
    /// (org.opencontainers.image.ref.name)
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
    tag: String,

    /// The source repository (org.opencontainers.image.source)
    #[arg(long, default_value = env!("CARGO_PKG_REPOSITORY"))]
    source: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<(), Error> {
    let module = std::fs::read(&args.wasm).map_err(|e| Error::file(&args.wasm, e))?;
    if !module.starts_with(b"\0asm") {
        return Err(Error::file(
            &args.wasm,
            "not a WebAssembly module (no \\0asm header); run ./scripts/build-filter",
        ));
    }
    let annotations = Annotations {
        source: args.source.clone(),
        revision: args.revision.clone(),
        version: args.tag.clone(),
        licenses: env!("CARGO_PKG_LICENSE").to_owned(),
        title: "scopegate-filter".to_owned(),
        created: layout::rfc3339(args.created),
    };
    println!("module  sha256:{}", layout::sha256_hex(&module));
    for variant in [Variant::Compat, Variant::Oci] {
        let dir = args.out.join(variant.name());
        let image = variant::build(variant, &module, &annotations, args.created)?;
        let digest = layout::write(&dir, &image, &args.tag)?;
        println!("{:<7} {digest}  {}", variant.name(), dir.display());
    }
    Ok(())
}
