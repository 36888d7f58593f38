//! OCI images as Istio's Wasm image fetcher reads them (`pkg/wasm/imagefetcher.go`, copied
//! by Envoy Gateway as `internal/wasm/imagefetcher.go`), for the packaging test: the same
//! checks in the same order, with the same messages, on a manifest and its blobs.
//!
//! 1. A Docker schema 2 manifest: the last layer must be
//!    `application/vnd.docker.image.rootfs.diff.tar.gzip`, holding `plugin.wasm`.
//! 2. Otherwise "compat": the last layer must be `application/vnd.oci.image.layer.v1.tar+gzip`,
//!    a tar.gz in which the first file named `plugin.wasm` (in any directory) is the module.
//! 3. Otherwise "oci": exactly two layers, one of them
//!    `application/vnd.module.wasm.content.layer.v1+wasm`, whose blob is the module.
//!
//! Blobs are checked against their digests first, as go-containerregistry does.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// An OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// A Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// An OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// An OCI tar+gzip layer (the "compat" layout).
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// A Docker tar+gzip layer (the "compat" layout in a Docker image).
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// The runtime configuration of the "oci" layout.
pub const WASM_CONFIG: &str = "application/vnd.module.wasm.config.v1+json";
/// The module layer of the "oci" layout.
pub const WASM_CONTENT: &str = "application/vnd.module.wasm.content.layer.v1+wasm";

/// Which path of the fetcher took the module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// A Docker image with a tar+gzip layer holding `plugin.wasm`.
    Docker,
    /// An OCI image with a tar+gzip layer holding `plugin.wasm`.
    Compat,
    /// The Wasm artifact media types.
    Oci,
}

/// `sha256:` and the lower-case hex SHA-256 of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// The lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The module in the image of `manifest`, as Istio's fetcher extracts it, and which layout
/// it was found in; the fetcher's error otherwise. `blob` returns a blob by digest.
pub fn istio_extract(
    manifest: &Value,
    blob: impl Fn(&str) -> Result<Vec<u8>, String>,
) -> Result<(Fetched, Vec<u8>), String> {
    let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
    let media_type = |layer: &Value| layer["mediaType"].as_str().unwrap_or("").to_owned();
    let digest = |layer: &Value| layer["digest"].as_str().unwrap_or("").to_owned();
    let last_tar_gz = |expected: &str| -> Result<Vec<u8>, String> {
        let layer = layers
            .last()
            .ok_or("number of layers must be greater than zero")?;
        let found = media_type(layer);
        if found != expected {
            return Err(format!("invalid media type {found} (expect {expected})"));
        }
        plugin_wasm(&blob(&digest(layer))?)
            .map_err(|e| format!("could not extract wasm binary: {e}"))
    };
    if manifest["mediaType"] == DOCKER_MANIFEST {
        return last_tar_gz(DOCKER_LAYER)
            .map(|module| (Fetched::Docker, module))
            .map_err(|e| {
                format!("could not extract Wasm file from the image as Docker container {e}")
            });
    }
    let compat = match last_tar_gz(OCI_LAYER_GZIP) {
        Ok(module) => return Ok((Fetched::Compat, module)),
        Err(e) => e,
    };
    let oci = (|| {
        if layers.len() != 2 {
            return Err(format!(
                "number of layers must be 2 but got {}",
                layers.len()
            ));
        }
        let layer = layers
            .iter()
            .find(|l| media_type(l) == WASM_CONTENT)
            .ok_or(format!("could not find the layer of type {WASM_CONTENT}"))?;
        blob(&digest(layer))
    })();
    match oci {
        Ok(module) => Ok((Fetched::Oci, module)),
        Err(oci) => Err(format!(
            "the given image is in invalid format as an OCI image: could not parse as compat \
             variant: {compat}; could not parse as oci variant: {oci}"
        )),
    }
}

/// The first file named `plugin.wasm` (in any directory) in a tar.gz.
fn plugin_wasm(tar_gz: &[u8]) -> Result<Vec<u8>, String> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(tar_gz)
        .read_to_end(&mut tar)
        .map_err(|e| format!("failed to parse layer as tar.gz: {e}"))?;
    let mut archive = tar::Archive::new(&tar[..]);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path().map_err(|e| e.to_string())?;
        if path.file_name().is_some_and(|n| n == "plugin.wasm") {
            let mut module = Vec::new();
            entry
                .read_to_end(&mut module)
                .map_err(|e| format!("failed to read plugin.wasm: {e}"))?;
            return Ok(module);
        }
    }
    Err("plugin.wasm not found in the archive".into())
}

/// An OCI image layout directory (as `skopeo copy … oci:DIR:TAG` writes it).
pub struct LayoutDir(PathBuf);

impl LayoutDir {
    /// The layout at `dir`.
    pub fn new(dir: &Path) -> Self {
        Self(dir.to_path_buf())
    }

    /// The digest and bytes of the manifest tagged `tag` in `index.json`.
    pub fn manifest(&self, tag: &str) -> Result<(String, Vec<u8>), String> {
        let index: Value = serde_json::from_slice(
            &fs::read(self.0.join("index.json")).map_err(|e| format!("index.json: {e}"))?,
        )
        .map_err(|e| format!("index.json: {e}"))?;
        let digest = index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .and_then(|m| m["digest"].as_str())
            .ok_or(format!("no manifest tagged {tag} in index.json"))?
            .to_owned();
        let bytes = self.blob(&digest)?;
        Ok((digest, bytes))
    }

    /// The blob `digest` (`sha256:…`), refused unless its content has that digest.
    pub fn blob(&self, digest: &str) -> Result<Vec<u8>, String> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or(format!("not a sha256 digest: {digest}"))?;
        let bytes = fs::read(self.0.join("blobs/sha256").join(hex))
            .map_err(|e| format!("blob {digest}: {e}"))?;
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(format!("blob {digest} has digest {actual}"));
        }
        Ok(bytes)
    }
}
