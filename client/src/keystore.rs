//! The wallet file: an ed25519 secret seed encrypted with a key derived from
//! a passphrase (scrypt) under an AEAD (XChaCha20-Poly1305).
//!
//! Format (versioned JSON, documented in docs/cli.md):
//!
//! ```json
//! {
//!   "format": "alliance-keystore",
//!   "version": 1,
//!   "address": "pa1...",
//!   "kdf": {"name": "scrypt", "log_n": 17, "r": 8, "p": 1, "salt": "<32 hex>"},
//!   "cipher": {"name": "xchacha20poly1305", "nonce": "<48 hex>"},
//!   "ciphertext": "<96 hex: 32-byte seed + 16-byte tag>"
//! }
//! ```
//!
//! The associated data of the AEAD binds the format, version, address and
//! KDF parameters, so editing any of them (or the ciphertext) makes
//! decryption fail instead of yielding a different key. The file is created
//! with mode 0600 and never overwritten.
//!
//! A merchant may also sign with its node key file (`node_key.json`,
//! `{"secret_seed": hex, "address": ...}`, unencrypted, mode 0600):
//! [`load_signing_key`] detects which format a file is.

use std::fs;
use std::io::Write;
use std::path::Path;

use alliance_protocol::{Keypair, PublicKey};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The `format` field of every keystore.
pub const FORMAT: &str = "alliance-keystore";
/// The current keystore version.
pub const VERSION: u32 = 1;
/// Environment variable that selects fast, insecure KDF parameters
/// (`ALLIANCE_KDF=fast`): for tests only.
pub const KDF_ENV: &str = "ALLIANCE_KDF";
/// Environment variable holding the passphrase (otherwise it is prompted).
pub const PASSPHRASE_ENV: &str = "ALLIANCE_PASSPHRASE";

/// scrypt parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// log2 of the CPU/memory cost N.
    pub log_n: u8,
    /// Block size.
    pub r: u32,
    /// Parallelism.
    pub p: u32,
}

impl KdfParams {
    /// The default: N = 2^17, r = 8, p = 1 (128 MiB, ~0.3-1 s).
    pub const STRONG: KdfParams = KdfParams {
        log_n: 17,
        r: 8,
        p: 1,
    };
    /// N = 2^10, r = 8, p = 1 (1 MiB): INSECURE, for tests only.
    pub const FAST_INSECURE: KdfParams = KdfParams {
        log_n: 10,
        r: 8,
        p: 1,
    };
    /// Largest log_n accepted when reading a file (bounds memory use of a
    /// hostile file: 2^22 × 8 × 128 bytes = 4 GiB at r = 8 is already a lot).
    pub const LOG_N_MAX: u8 = 22;

    /// STRONG, unless `ALLIANCE_KDF=fast` is set.
    pub fn from_env() -> KdfParams {
        match std::env::var(KDF_ENV).as_deref() {
            Ok("fast") => KdfParams::FAST_INSECURE,
            _ => KdfParams::STRONG,
        }
    }
}

/// Keystore and key-file problems, each saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// I/O on the file.
    #[error("cannot read or write {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Refusing to overwrite an existing file.
    #[error("{0} already exists; refusing to overwrite a key (choose another --out)")]
    Exists(String),
    /// AEAD authentication failed.
    #[error("wrong passphrase for {0} (or the file was modified)")]
    WrongPassphrase(String),
    /// Not a keystore or node key file, or an unsupported version.
    #[error("{path} is not a valid key file: {why}")]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// A node key file readable by others.
    #[error("key file {path} has mode {mode:o}; it must be readable only by its owner: run `chmod 600 {path}`")]
    LoosePermissions {
        /// The file.
        path: String,
        /// Its mode.
        mode: u32,
    },
    /// Passphrase problems (empty, mismatch, no terminal).
    #[error("{0}")]
    Passphrase(String),
}

#[derive(Serialize, Deserialize)]
struct KdfJson {
    name: String,
    log_n: u8,
    r: u32,
    p: u32,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct CipherJson {
    name: String,
    nonce: String,
}

#[derive(Serialize, Deserialize)]
struct KeystoreJson {
    format: String,
    version: u32,
    address: String,
    kdf: KdfJson,
    cipher: CipherJson,
    ciphertext: String,
}

#[derive(Deserialize)]
struct NodeKeyJson {
    secret_seed: String,
}

fn aad(address: &str, p: &KdfParams) -> Vec<u8> {
    format!(
        "{FORMAT}/v{VERSION}|{address}|scrypt|{}|{}|{}",
        p.log_n, p.r, p.p
    )
    .into_bytes()
}

fn derive(passphrase: &str, salt: &[u8], p: &KdfParams) -> Result<Zeroizing<[u8; 32]>, String> {
    let params = scrypt::Params::new(p.log_n, p.r, p.p, 32).map_err(|e| e.to_string())?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(passphrase.as_bytes(), salt, &params, key.as_mut())
        .map_err(|e| e.to_string())?;
    Ok(key)
}

/// Encrypts `key` into keystore JSON text.
pub fn encrypt(
    key: &Keypair,
    passphrase: &str,
    params: KdfParams,
) -> Result<String, KeystoreError> {
    let address = key.public().to_string();
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    let mut nonce = [0u8; 24];
    OsRng.fill_bytes(&mut nonce);
    let derived = derive(passphrase, &salt, &params).map_err(KeystoreError::Passphrase)?;
    let cipher = XChaCha20Poly1305::new(derived.as_ref().into());
    let seed = Zeroizing::new(key.seed());
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: seed.as_ref(),
                aad: &aad(&address, &params),
            },
        )
        .map_err(|_| KeystoreError::Passphrase("encryption failed".into()))?;
    let json = KeystoreJson {
        format: FORMAT.into(),
        version: VERSION,
        address,
        kdf: KdfJson {
            name: "scrypt".into(),
            log_n: params.log_n,
            r: params.r,
            p: params.p,
            salt: hex::encode(salt),
        },
        cipher: CipherJson {
            name: "xchacha20poly1305".into(),
            nonce: hex::encode(nonce),
        },
        ciphertext: hex::encode(ciphertext),
    };
    serde_json::to_string_pretty(&json).map_err(|e| KeystoreError::Passphrase(e.to_string()))
}

/// Decrypts keystore JSON text; `path` is only for messages.
pub fn decrypt(text: &str, passphrase: &str, path: &str) -> Result<Keypair, KeystoreError> {
    let invalid = |why: String| KeystoreError::Invalid {
        path: path.to_string(),
        why,
    };
    let json: KeystoreJson = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
    if json.format != FORMAT {
        return Err(invalid(format!(
            "format is `{}`, expected `{FORMAT}`",
            json.format
        )));
    }
    if json.version != VERSION {
        return Err(invalid(format!(
            "keystore version {} is not supported (this wallet reads version {VERSION})",
            json.version
        )));
    }
    if json.kdf.name != "scrypt" || json.cipher.name != "xchacha20poly1305" {
        return Err(invalid(format!(
            "unsupported kdf `{}` or cipher `{}`",
            json.kdf.name, json.cipher.name
        )));
    }
    let params = KdfParams {
        log_n: json.kdf.log_n,
        r: json.kdf.r,
        p: json.kdf.p,
    };
    if params.log_n == 0
        || params.log_n > KdfParams::LOG_N_MAX
        || params.r == 0
        || params.r > 32
        || params.p == 0
        || params.p > 16
    {
        return Err(invalid("scrypt parameters out of range".into()));
    }
    let salt = hex::decode(&json.kdf.salt).map_err(|e| invalid(format!("salt: {e}")))?;
    let nonce = hex::decode(&json.cipher.nonce).map_err(|e| invalid(format!("nonce: {e}")))?;
    if nonce.len() != 24 {
        return Err(invalid("nonce must be 24 bytes".into()));
    }
    let ciphertext =
        hex::decode(&json.ciphertext).map_err(|e| invalid(format!("ciphertext: {e}")))?;
    let derived = derive(passphrase, &salt, &params).map_err(invalid)?;
    let cipher = XChaCha20Poly1305::new(derived.as_ref().into());
    let seed = Zeroizing::new(
        cipher
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: &aad(&json.address, &params),
                },
            )
            .map_err(|_| KeystoreError::WrongPassphrase(path.to_string()))?,
    );
    let seed: [u8; 32] = seed
        .as_slice()
        .try_into()
        .map_err(|_| invalid("secret must be 32 bytes".into()))?;
    let key = Keypair::from_seed(seed);
    if key.public().to_string() != json.address {
        return Err(invalid("stored address does not match the key".into()));
    }
    Ok(key)
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> KeystoreError + '_ {
    move |source| KeystoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes a new keystore file with mode 0600; refuses to overwrite.
pub fn create(
    path: &Path,
    key: &Keypair,
    passphrase: &str,
    params: KdfParams,
) -> Result<(), KeystoreError> {
    if path.exists() {
        return Err(KeystoreError::Exists(path.display().to_string()));
    }
    let text = encrypt(key, passphrase, params)?;
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeystoreError::Exists(path.display().to_string())
        } else {
            io_err(path)(e)
        }
    })?;
    f.write_all(text.as_bytes()).map_err(io_err(path))?;
    f.write_all(b"\n").map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))?;
    Ok(())
}

/// Which kind of key file a path holds.
enum KeyFile {
    Keystore(String),
    Node,
}

fn read_key_file(path: &Path) -> Result<KeyFile, KeystoreError> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| KeystoreError::Invalid {
            path: path.display().to_string(),
            why: format!("not JSON: {e}"),
        })?;
    if value.get("secret_seed").is_some() {
        Ok(KeyFile::Node)
    } else if value.get("format").and_then(|f| f.as_str()) == Some(FORMAT) {
        Ok(KeyFile::Keystore(text))
    } else {
        Err(KeystoreError::Invalid {
            path: path.display().to_string(),
            why: "neither an alliance keystore (`alliance keygen`) nor a node key file (node_key.json)"
                .into(),
        })
    }
}

/// The address of a key file, without the passphrase.
pub fn address_of(path: &Path) -> Result<PublicKey, KeystoreError> {
    let p = path.display().to_string();
    let invalid = |why: String| KeystoreError::Invalid {
        path: p.clone(),
        why,
    };
    match read_key_file(path)? {
        KeyFile::Keystore(text) => {
            let json: KeystoreJson =
                serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
            json.address
                .parse()
                .map_err(|e| invalid(format!("address: {e}")))
        }
        KeyFile::Node => Ok(load_node_key(path)?.public()),
    }
}

fn load_node_key(path: &Path) -> Result<Keypair, KeystoreError> {
    let p = path.display().to_string();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .map_err(io_err(path))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeystoreError::LoosePermissions { path: p, mode });
        }
    }
    let text = Zeroizing::new(fs::read_to_string(path).map_err(io_err(path))?);
    let invalid = |why: String| KeystoreError::Invalid {
        path: p.clone(),
        why,
    };
    let json: NodeKeyJson = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let seed = Zeroizing::new(
        hex::decode(json.secret_seed.trim()).map_err(|e| invalid(format!("secret_seed: {e}")))?,
    );
    let seed: [u8; 32] = seed
        .as_slice()
        .try_into()
        .map_err(|_| invalid("secret_seed must be 32 bytes".into()))?;
    Ok(Keypair::from_seed(seed))
}

/// Loads a signing key from a keystore (asking for the passphrase through
/// `passphrase`, called only if needed) or from a node key file.
pub fn load_signing_key(
    path: &Path,
    passphrase: impl FnOnce() -> Result<Zeroizing<String>, KeystoreError>,
) -> Result<Keypair, KeystoreError> {
    match read_key_file(path)? {
        KeyFile::Keystore(text) => {
            let pass = passphrase()?;
            decrypt(&text, &pass, &path.display().to_string())
        }
        KeyFile::Node => load_node_key(path),
    }
}

/// The passphrase for an existing keystore: `ALLIANCE_PASSPHRASE`, or a
/// prompt without echo.
pub fn passphrase_for(path: &Path) -> Result<Zeroizing<String>, KeystoreError> {
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        return Ok(Zeroizing::new(p));
    }
    rpassword::prompt_password(format!("Passphrase for {}: ", path.display()))
        .map(Zeroizing::new)
        .map_err(|e| {
            KeystoreError::Passphrase(format!(
                "cannot read the passphrase from the terminal ({e}); set {PASSPHRASE_ENV}"
            ))
        })
}

/// A new passphrase: `ALLIANCE_PASSPHRASE`, or prompted twice without echo.
/// Refuses an empty one.
pub fn new_passphrase() -> Result<Zeroizing<String>, KeystoreError> {
    let pass = match std::env::var(PASSPHRASE_ENV) {
        Ok(p) => Zeroizing::new(p),
        Err(_) => {
            let prompt = |msg: &str| {
                rpassword::prompt_password(msg)
                    .map(Zeroizing::new)
                    .map_err(|e| {
                        KeystoreError::Passphrase(format!(
                            "cannot read the passphrase from the terminal ({e}); set {PASSPHRASE_ENV}"
                        ))
                    })
            };
            let first = prompt("New passphrase: ")?;
            let second = prompt("Repeat passphrase: ")?;
            if *first != *second {
                return Err(KeystoreError::Passphrase(
                    "the two passphrases differ; nothing was written".into(),
                ));
            }
            first
        }
    };
    if pass.is_empty() {
        return Err(KeystoreError::Passphrase(
            "the passphrase must not be empty".into(),
        ));
    }
    Ok(pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_key() -> (tempfile::TempDir, std::path::PathBuf, Keypair) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.json");
        let key = Keypair::generate();
        create(&path, &key, "correct horse", KdfParams::FAST_INSECURE).unwrap();
        (dir, path, key)
    }

    fn load(path: &Path, pass: &str) -> Result<Keypair, KeystoreError> {
        let pass = pass.to_string();
        load_signing_key(path, move || Ok(Zeroizing::new(pass)))
    }

    #[test]
    fn round_trip() {
        let (_d, path, key) = temp_key();
        assert_eq!(load(&path, "correct horse").unwrap().public(), key.public());
        assert_eq!(address_of(&path).unwrap(), key.public());
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&hex::encode(key.seed())), "seed in clear");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["format"], FORMAT);
        assert_eq!(v["version"], 1);
        assert_eq!(v["kdf"]["name"], "scrypt");
        assert_eq!(v["cipher"]["name"], "xchacha20poly1305");
    }

    #[test]
    fn strong_params_are_the_default() {
        assert_eq!(KdfParams::STRONG.log_n, 17);
        assert!(scrypt::Params::new(17, 8, 1, 32).is_ok());
    }

    #[test]
    fn salt_and_nonce_are_random() {
        let key = Keypair::generate();
        let a = encrypt(&key, "pw", KdfParams::FAST_INSECURE).unwrap();
        let b = encrypt(&key, "pw", KdfParams::FAST_INSECURE).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn wrong_passphrase_is_a_clear_error() {
        let (_d, path, _key) = temp_key();
        let err = load(&path, "wrong").unwrap_err();
        assert!(matches!(err, KeystoreError::WrongPassphrase(_)), "{err}");
        assert!(err.to_string().contains("wrong passphrase for"));
    }

    #[test]
    fn tampered_file_is_refused() {
        let (_d, path, _key) = temp_key();
        let text = fs::read_to_string(&path).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        // Flip one ciphertext byte.
        let mut ct = hex::decode(v["ciphertext"].as_str().unwrap()).unwrap();
        ct[0] ^= 1;
        v["ciphertext"] = hex::encode(ct).into();
        let tampered = serde_json::to_string(&v).unwrap();
        assert!(matches!(
            decrypt(&tampered, "correct horse", "f"),
            Err(KeystoreError::WrongPassphrase(_))
        ));
        // Swap the displayed address for another one: bound by the AAD.
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["address"] = Keypair::generate().public().to_string().into();
        let tampered = serde_json::to_string(&v).unwrap();
        assert!(decrypt(&tampered, "correct horse", "f").is_err());
        // Weaken the KDF parameters: bound by the AAD too.
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["kdf"]["log_n"] = 9.into();
        let tampered = serde_json::to_string(&v).unwrap();
        assert!(decrypt(&tampered, "correct horse", "f").is_err());
        // Unknown version.
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["version"] = 2.into();
        let tampered = serde_json::to_string(&v).unwrap();
        assert!(matches!(
            decrypt(&tampered, "correct horse", "f"),
            Err(KeystoreError::Invalid { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn file_mode_is_0600() {
        use std::os::unix::fs::PermissionsExt;
        let (_d, path, _key) = temp_key();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn refuses_to_overwrite() {
        let (_d, path, key) = temp_key();
        let before = fs::read_to_string(&path).unwrap();
        let err = create(&path, &Keypair::generate(), "x", KdfParams::FAST_INSECURE).unwrap_err();
        assert!(matches!(err, KeystoreError::Exists(_)));
        assert_eq!(fs::read_to_string(&path).unwrap(), before);
        assert_eq!(load(&path, "correct horse").unwrap().public(), key.public());
    }

    #[cfg(unix)]
    #[test]
    fn node_key_files_are_detected() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node_key.json");
        let key = Keypair::from_label("node");
        let body = serde_json::json!({"secret_seed": hex::encode(key.seed()), "address": key.public().to_string()});
        fs::write(&path, body.to_string()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let loaded = load_signing_key(&path, || panic!("no passphrase for node keys")).unwrap();
        assert_eq!(loaded.public(), key.public());
        assert_eq!(address_of(&path).unwrap(), key.public());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load(&path, ""),
            Err(KeystoreError::LoosePermissions { .. })
        ));
    }

    #[test]
    fn garbage_is_not_a_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        fs::write(&path, "{\"hello\": 1}").unwrap();
        assert!(matches!(
            load(&path, ""),
            Err(KeystoreError::Invalid { .. })
        ));
    }
}
