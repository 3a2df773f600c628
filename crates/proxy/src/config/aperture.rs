//! Reading Aperture's `aperture.yaml` as it is (translation to our raw configuration).

use serde_json::Value;

use super::{ConfigError, RawConfig};

/// Whether a parsed file is an Aperture configuration (it has Aperture's top-level keys).
pub fn looks_like_aperture(v: &Value) -> bool {
    v.get("listenaddr").is_some() || v.get("authenticator").is_some()
}

/// Translates an Aperture configuration into our raw form, with warnings for settings that are
/// accepted but have no effect.
pub fn translate(_v: &Value) -> Result<(RawConfig, Vec<String>), ConfigError> {
    Err(ConfigError::new(
        "",
        "reading aperture.yaml is not available yet",
    ))
}
