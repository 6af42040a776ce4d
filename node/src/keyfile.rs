//! The node's key file: the merchant's ed25519 secret seed, hex, in a file
//! only its owner may read (mode 0600). A looser file is refused, like ssh
//! refuses a world-readable private key.

use std::fs;
use std::io::Write;
use std::path::Path;

use alliance_protocol::Keypair;
use serde::{Deserialize, Serialize};

/// File name of the key inside a node home.
pub const KEY_FILE: &str = "node_key.json";

#[derive(Serialize, Deserialize)]
struct KeyFileJson {
    /// 32-byte ed25519 seed, hex.
    secret_seed: String,
    /// The address, for people reading the file (not trusted on load).
    address: String,
}

/// Key file problems, each with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// I/O.
    #[error("cannot read or write key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Permissions allow others to read it.
    #[error("key file {path} has mode {mode:o}; it must be readable only by its owner: run `chmod 600 {path}`")]
    LoosePermissions {
        /// The file.
        path: String,
        /// Its mode.
        mode: u32,
    },
    /// Not a key file.
    #[error("key file {path} is not valid: {why}")]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// Would overwrite.
    #[error("key file {0} already exists; refusing to overwrite a key")]
    Exists(String),
}

/// Creates a new key file (mode 0600); refuses to overwrite.
pub fn create(path: &Path, key: &Keypair) -> Result<(), KeyFileError> {
    let p = path.display().to_string();
    if path.exists() {
        return Err(KeyFileError::Exists(p));
    }
    let json = KeyFileJson {
        secret_seed: hex::encode(key.seed()),
        address: key.public().to_string(),
    };
    let body = serde_json::to_string_pretty(&json).expect("key file serialises");
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let io = |source| KeyFileError::Io {
        path: p.clone(),
        source,
    };
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(body.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(())
}

/// Loads a key file, refusing one that group or others can access.
pub fn load(path: &Path) -> Result<Keypair, KeyFileError> {
    let p = path.display().to_string();
    let meta = fs::metadata(path).map_err(|source| KeyFileError::Io {
        path: p.clone(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::LoosePermissions { path: p, mode });
        }
    }
    let _ = meta;
    let text = fs::read_to_string(path).map_err(|source| KeyFileError::Io {
        path: p.clone(),
        source,
    })?;
    let json: KeyFileJson = serde_json::from_str(&text).map_err(|e| KeyFileError::Invalid {
        path: p.clone(),
        why: e.to_string(),
    })?;
    let seed = hex::decode(json.secret_seed.trim()).map_err(|e| KeyFileError::Invalid {
        path: p.clone(),
        why: e.to_string(),
    })?;
    let seed: [u8; 32] = seed.try_into().map_err(|_| KeyFileError::Invalid {
        path: p,
        why: "secret_seed must be 32 bytes".into(),
    })?;
    Ok(Keypair::from_seed(seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let key = Keypair::from_label("node");
        create(&path, &key).unwrap();
        assert_eq!(load(&path).unwrap().public(), key.public());
        assert!(matches!(create(&path, &key), Err(KeyFileError::Exists(_))));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                load(&path),
                Err(KeyFileError::LoosePermissions { mode: 0o644, .. })
            ));
        }
    }
}
