//! The two image layouts that Istio's image fetcher (`pkg/wasm/imagefetcher.go`) and Envoy
//! Gateway's copy of it accept, after the Wasm image specification of solo-io/wasm (`spec/`):
//!
//! - **compat**: a standard OCI image (`application/vnd.oci.image.config.v1+json`) with
//!   exactly one `application/vnd.oci.image.layer.v1.tar+gzip` layer holding `plugin.wasm`,
//!   and the manifest annotation `module.wasm.image/variant: compat`. Any registry and any
//!   image tool handle it.
//! - **oci**: the Wasm artifact: the config is the runtime configuration
//!   (`application/vnd.module.wasm.config.v1+json`), and the layers are that same blob and
//!   the module itself as `application/vnd.module.wasm.content.layer.v1+wasm`, uncompressed.
//!   The fetchers refuse this variant unless it has exactly two layers (one of them the
//!   module), which is how the spec's reference tool (`wasme push`) wrote it: a manifest
//!   with the module as its only layer is refused.

use std::collections::HashMap;
use std::io::Write;

use flate2::{Compression, GzBuilder};
use oci_spec::image::{
    Arch, ImageConfigurationBuilder, ImageManifestBuilder, MediaType, Os, RootFsBuilder,
    ANNOTATION_CREATED, ANNOTATION_LICENSES, ANNOTATION_REVISION, ANNOTATION_SOURCE,
    ANNOTATION_TITLE, ANNOTATION_VERSION,
};
use serde_json::json;

use crate::error::Error;
use crate::layout::{canonical_json, descriptor, sha256_hex, Image};

/// The config and first layer of the "oci" variant: the runtime configuration.
pub const WASM_CONFIG: &str = "application/vnd.module.wasm.config.v1+json";
/// The module layer of the "oci" variant.
pub const WASM_CONTENT: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
/// The file the "compat" layer holds.
pub const PLUGIN_WASM: &str = "plugin.wasm";
/// The root context of the filter (Envoy `root_id`, Istio `pluginName`).
const ROOT_ID: &str = "scopegate";
/// The proxy-wasm ABI the filter exports (proxy-wasm 0.2.x: `proxy_abi_version_0_2_1`).
const ABI_VERSION: &str = "proxy_abi_version_0_2_1";

/// One of the two layouts.
#[derive(Clone, Copy, Debug)]
pub enum Variant {
    /// One tar+gzip layer holding `plugin.wasm`.
    Compat,
    /// The Wasm artifact media types.
    Oci,
}

impl Variant {
    /// `compat` or `oci`: the directory name and what the spec calls it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Compat => "compat",
            Self::Oci => "oci",
        }
    }
}

/// The standard `org.opencontainers.image.*` annotations of the manifest.
pub struct Annotations {
    pub source: String,
    pub revision: String,
    pub version: String,
    pub licenses: String,
    pub title: String,
    /// RFC 3339.
    pub created: String,
}

impl Annotations {
    fn map(&self) -> HashMap<String, String> {
        HashMap::from([
            (ANNOTATION_SOURCE.to_owned(), self.source.clone()),
            (ANNOTATION_REVISION.to_owned(), self.revision.clone()),
            (ANNOTATION_VERSION.to_owned(), self.version.clone()),
            (ANNOTATION_LICENSES.to_owned(), self.licenses.clone()),
            (ANNOTATION_TITLE.to_owned(), self.title.clone()),
            (ANNOTATION_CREATED.to_owned(), self.created.clone()),
        ])
    }
}

fn title(name: &str) -> Option<HashMap<String, String>> {
    Some(HashMap::from([(
        ANNOTATION_TITLE.to_owned(),
        name.to_owned(),
    )]))
}

/// The image of `module` in `variant`; `created` (seconds since 1970) is also the mtime in
/// the tar header.
pub fn build(
    variant: Variant,
    module: &[u8],
    annotations: &Annotations,
    created: u64,
) -> Result<Image, Error> {
    match variant {
        Variant::Compat => compat(module, annotations, created),
        Variant::Oci => oci(module, annotations),
    }
}

fn compat(module: &[u8], annotations: &Annotations, created: u64) -> Result<Image, Error> {
    let tar = plugin_tar(module, created)?;
    let layer = gzip(&tar)?;
    let config = ImageConfigurationBuilder::default()
        .created(annotations.created.clone())
        .architecture(Arch::Wasm)
        .os(Os::Other("wasip1".to_owned()))
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![format!("sha256:{}", sha256_hex(&tar))])
                .build()?,
        )
        .build()?;
    let config = canonical_json(&config)?;
    let mut manifest_annotations = annotations.map();
    manifest_annotations.insert("module.wasm.image/variant".to_owned(), "compat".to_owned());
    let manifest = ImageManifestBuilder::default()
        .schema_version(2_u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(MediaType::ImageConfig, &config, None)?)
        .layers(vec![descriptor(MediaType::ImageLayerGzip, &layer, None)?])
        .annotations(manifest_annotations)
        .build()?;
    Ok(Image {
        manifest: canonical_json(&manifest)?,
        blobs: vec![config, layer],
    })
}

fn oci(module: &[u8], annotations: &Annotations) -> Result<Image, Error> {
    let runtime = canonical_json(&json!({
        "type": "envoy_proxy",
        "abiVersions": [ABI_VERSION],
        "config": {"rootIds": [ROOT_ID]}
    }))?;
    let config_type = || MediaType::Other(WASM_CONFIG.to_owned());
    let manifest = ImageManifestBuilder::default()
        .schema_version(2_u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(config_type(), &runtime, None)?)
        .layers(vec![
            descriptor(config_type(), &runtime, title("runtime-config.json"))?,
            descriptor(
                MediaType::Other(WASM_CONTENT.to_owned()),
                module,
                title(PLUGIN_WASM),
            )?,
        ])
        .annotations(annotations.map())
        .build()?;
    Ok(Image {
        manifest: canonical_json(&manifest)?,
        blobs: vec![runtime, module.to_vec()],
    })
}

/// A tar archive of `plugin.wasm` alone: a ustar header with mode 0644, owner 0:0, no user or
/// group names and `mtime` as the only time.
fn plugin_tar(module: &[u8], mtime: u64) -> Result<Vec<u8>, Error> {
    let mut header = tar::Header::new_ustar();
    header
        .set_path(PLUGIN_WASM)
        .map_err(|e| Error::new(format!("tar header: {e}")))?;
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(module.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder
        .append(&header, module)
        .map_err(|e| Error::new(format!("tar: {e}")))?;
    builder
        .into_inner()
        .map_err(|e| Error::new(format!("tar: {e}")))
}

/// gzip with no name and a zero mtime in its header, at the best compression.
fn gzip(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .map_err(|e| Error::new(format!("gzip: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn annotations() -> Annotations {
        Annotations {
            source: "https://example.test/scopegate".into(),
            revision: "abc".into(),
            version: "0.1.0".into(),
            licenses: "Apache-2.0 OR MIT".into(),
            title: "scopegate-filter".into(),
            created: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn the_same_input_gives_the_same_bytes() {
        for variant in [Variant::Compat, Variant::Oci] {
            let a = build(variant, b"\0asm\x01\0\0\0", &annotations(), 1).unwrap();
            let b = build(variant, b"\0asm\x01\0\0\0", &annotations(), 1).unwrap();
            assert_eq!(a.manifest, b.manifest);
            assert_eq!(a.blobs, b.blobs);
        }
    }

    #[test]
    fn the_compat_layer_holds_plugin_wasm_alone() {
        let image = build(Variant::Compat, b"\0asm-module", &annotations(), 7).unwrap();
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&image.blobs[1][..])
            .read_to_end(&mut tar)
            .unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let entries: Vec<_> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let header = e.header().clone();
                let mut body = Vec::new();
                e.read_to_end(&mut body).unwrap();
                (e.path().unwrap().display().to_string(), header, body)
            })
            .collect();
        assert_eq!(entries.len(), 1);
        let (path, header, body) = &entries[0];
        assert_eq!(path, "plugin.wasm");
        assert_eq!(body, b"\0asm-module");
        assert_eq!(header.mtime().unwrap(), 7);
        assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
    }
}
