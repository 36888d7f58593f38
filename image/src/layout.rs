//! OCI image layout directories (image-spec `image-layout.md`): `oci-layout`, `index.json`
//! naming one manifest by its tag, and every blob under `blobs/sha256/`. JSON documents are
//! written with their keys sorted, so that equal content is equal bytes.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use oci_spec::image::{
    Descriptor, DescriptorBuilder, ImageIndexBuilder, MediaType, OciLayoutBuilder, Sha256Digest,
    ANNOTATION_REF_NAME,
};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::Error;

/// An image: its manifest (canonical JSON) and the blobs it references.
pub struct Image {
    /// The manifest's bytes.
    pub manifest: Vec<u8>,
    /// The config and layer blobs.
    pub blobs: Vec<Vec<u8>>,
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The descriptor of `bytes` as a blob of `media_type`.
pub fn descriptor(
    media_type: MediaType,
    bytes: &[u8],
    annotations: Option<HashMap<String, String>>,
) -> Result<Descriptor, Error> {
    let digest: Sha256Digest = sha256_hex(bytes).parse()?;
    let mut builder = DescriptorBuilder::default()
        .media_type(media_type)
        .digest(digest)
        .size(bytes.len() as u64);
    if let Some(annotations) = annotations {
        builder = builder.annotations(annotations);
    }
    Ok(builder.build()?)
}

/// `value` as JSON with every object's keys sorted (the OCI types keep annotations in a
/// `HashMap`, whose order changes from run to run).
pub fn canonical_json(value: &impl Serialize) -> Result<Vec<u8>, Error> {
    fn sorted(value: Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(String, Value)> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k, sorted(v)))
                        .collect::<Map<_, _>>(),
                )
            }
            Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
            other => other,
        }
    }
    Ok(serde_json::to_vec(&sorted(serde_json::to_value(value)?))?)
}

/// Writes `image` as an OCI image layout at `dir`, tagged `tag`, replacing an earlier
/// layout there; returns the manifest digest (`sha256:…`).
pub fn write(dir: &Path, image: &Image, tag: &str) -> Result<String, Error> {
    if dir.exists() {
        let empty = fs::read_dir(dir)
            .map_err(|e| Error::file(dir, e))?
            .next()
            .is_none();
        if !empty && !dir.join("oci-layout").is_file() {
            return Err(Error::file(
                dir,
                "exists and is not an OCI image layout; not replacing it",
            ));
        }
        fs::remove_dir_all(dir).map_err(|e| Error::file(dir, e))?;
    }
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(|e| Error::file(&blobs, e))?;
    let put = |bytes: &[u8]| {
        let path = blobs.join(sha256_hex(bytes));
        fs::write(&path, bytes).map_err(|e| Error::file(&path, e))
    };
    for blob in &image.blobs {
        put(blob)?;
    }
    put(&image.manifest)?;

    let manifest = descriptor(
        MediaType::ImageManifest,
        &image.manifest,
        Some(HashMap::from([(
            ANNOTATION_REF_NAME.to_owned(),
            tag.to_owned(),
        )])),
    )?;
    let digest = manifest.digest().to_string();
    let index = ImageIndexBuilder::default()
        .schema_version(2_u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![manifest])
        .build()?;
    let layout = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()?;
    for (name, bytes) in [
        ("index.json", canonical_json(&index)?),
        ("oci-layout", canonical_json(&layout)?),
    ] {
        let path = dir.join(name);
        fs::write(&path, bytes).map_err(|e| Error::file(&path, e))?;
    }
    Ok(digest)
}

/// `2026-12-03T12:00:00Z` for seconds since 1970.
pub fn rfc3339(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_764_763_200), "2025-12-03T12:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn json_keys_are_sorted_at_every_depth() {
        let value = serde_json::json!({"b": 1, "a": {"d": [{"z": 1, "y": 2}], "c": 3}});
        assert_eq!(
            String::from_utf8(canonical_json(&value).unwrap()).unwrap(),
            r#"{"a":{"c":3,"d":[{"y":2,"z":1}]},"b":1}"#
        );
    }

    #[test]
    fn a_directory_that_is_not_a_layout_is_not_replaced() {
        let dir = std::env::temp_dir().join(format!("scopegate-image-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("precious"), "x").unwrap();
        let image = Image {
            manifest: b"{}".to_vec(),
            blobs: vec![],
        };
        let err = write(&dir, &image, "t").unwrap_err();
        assert!(err.to_string().contains("not an OCI image layout"), "{err}");
        assert!(dir.join("precious").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
