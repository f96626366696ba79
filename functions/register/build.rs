//! Turns `infra/openapi.yaml` into the JSON that `GET /v1/openapi.json` serves, at build
//! time: the function ships no YAML parser, and a document that does not parse fails the
//! build instead of a request.

use std::error::Error;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn Error>> {
    let source =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../infra/openapi.yaml");
    println!("cargo::rerun-if-changed={}", source.display());
    let yaml = std::fs::read_to_string(&source)
        .map_err(|e| format!("reading {}: {e}", source.display()))?;
    let document: serde_json::Value =
        serde_norway::from_str(&yaml).map_err(|e| format!("parsing {}: {e}", source.display()))?;
    let target = PathBuf::from(std::env::var("OUT_DIR")?).join("openapi.json");
    std::fs::write(target, serde_json::to_vec(&document)?)?;
    Ok(())
}
