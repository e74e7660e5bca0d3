//! Static DID documents from a directory (`--did-dir`): every `*.json` file holds one DID
//! document, indexed by its `id`. This covers `did:nuts` (whose network poortwachter does not
//! join) and air-gapped setups.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::{method_of, DidDocument, DidError};

/// Documents read at start-up.
#[derive(Default)]
pub struct StaticDocuments {
    by_did: HashMap<String, Arc<DidDocument>>,
}

/// Largest static document accepted.
const MAX_BYTES: u64 = 256 * 1024;

impl StaticDocuments {
    /// Reads every `*.json` in `dir`. A malformed document or a duplicate id is an error naming
    /// the file.
    pub fn load(dir: &Path) -> Result<Self, DidError> {
        let err = |reason: String| DidError::Unresolvable {
            did: format!("(DID directory {})", dir.display()),
            reason,
        };
        let entries = std::fs::read_dir(dir).map_err(|e| err(e.to_string()))?;
        let mut by_did = HashMap::new();
        let mut paths: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        for path in paths {
            let bad = |reason: String| DidError::BadDocument {
                did: path.display().to_string(),
                reason,
            };
            let size = std::fs::metadata(&path)
                .map_err(|e| bad(e.to_string()))?
                .len();
            if size > MAX_BYTES {
                return Err(bad(format!("larger than {MAX_BYTES} bytes")));
            }
            let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
            let doc: DidDocument = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
            method_of(&doc.id).map_err(|e| bad(e.to_string()))?;
            if by_did.insert(doc.id.clone(), Arc::new(doc)).is_some() {
                return Err(bad(
                    "a DID document with the same id is in another file".into()
                ));
            }
        }
        Ok(Self { by_did })
    }

    /// The document for `did`, if the directory holds one.
    #[must_use]
    pub fn get(&self, did: &str) -> Option<Arc<DidDocument>> {
        self.by_did.get(did).cloned()
    }
}
