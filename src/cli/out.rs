//! Writing `relance build`'s output folder without touching what it did not
//! write. The folder holds a manifest, `.relance-build.json`, listing every
//! file the last build wrote; the next build removes only those it does not
//! write again. A non-empty folder without a manifest is refused: it may
//! hold the user's own files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

/// The manifest's file name, in the output folder.
pub const MANIFEST: &str = ".relance-build.json";

#[derive(Serialize, Deserialize)]
struct Manifest {
    /// Always `relance build`: says what the file is to a reader.
    written_by: String,
    /// Every file the build wrote, relative to the folder, `/`-separated.
    files: BTreeSet<String>,
}

/// Why the output folder was not written.
#[derive(Debug)]
pub enum OutError {
    /// The folder is not ours to write into: the message says what to do.
    Refused(String),
    Io(io::Error),
}

impl From<io::Error> for OutError {
    fn from(e: io::Error) -> Self {
        OutError::Io(e)
    }
}

/// A manifest entry that stays inside the folder (a hand-edited manifest
/// must not make relance delete elsewhere).
fn inside(rel: &str) -> bool {
    !rel.is_empty()
        && Path::new(rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// What the previous build wrote into `out` (empty for a new or empty
/// folder), or why the folder may not be written.
fn previous(out: &Path) -> Result<BTreeSet<String>, OutError> {
    let meta = match fs::symlink_metadata(out) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(e.into()),
    };
    if !meta.is_dir() && !fs::metadata(out).is_ok_and(|m| m.is_dir()) {
        return Err(OutError::Refused(format!(
            "`{}` is not a folder: give `--out` a new or empty folder",
            out.display()
        )));
    }
    match fs::read(out.join(MANIFEST)) {
        Ok(bytes) => {
            let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
                OutError::Refused(format!(
                    "`{}` is damaged ({e}): remove the build folder `{}` (after saving any file of yours in it) and build again",
                    out.join(MANIFEST).display(),
                    out.display()
                ))
            })?;
            Ok(manifest.files.into_iter().filter(|f| inside(f)).collect())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if fs::read_dir(out)?.next().is_some() {
                return Err(OutError::Refused(format!(
                    "`{}` is not empty and is not a build folder (it has no `{MANIFEST}`), so relance will not write into it: give `--out` a new or empty folder, or empty this one (a build folder from an older relance can simply be deleted)",
                    out.display()
                )));
            }
            Ok(BTreeSet::new())
        }
        Err(e) => Err(e.into()),
    }
}

fn write_manifest(out: &Path, files: &BTreeSet<String>) -> io::Result<()> {
    let manifest = Manifest {
        written_by: "relance build".to_string(),
        files: files.clone(),
    };
    let mut text = serde_json::to_string_pretty(&manifest).map_err(io::Error::other)?;
    text.push('\n');
    fs::write(out.join(MANIFEST), text)
}

/// Writes `plan.json` and the previews (`preview/…`) under `out`, removes
/// the files of the previous build that this one does not write again (and
/// the folders they leave empty), and leaves every other file alone.
pub fn write_build(
    out: &Path,
    plan: &str,
    previews: &BTreeMap<String, Vec<u8>>,
) -> Result<(), OutError> {
    let old = previous(out)?;
    let mut new: BTreeSet<String> = previews.keys().cloned().collect();
    new.insert("plan.json".to_string());
    fs::create_dir_all(out)?;
    // Until the end, the manifest covers both builds: a build stopped
    // midway leaves nothing the next one would not clean up.
    write_manifest(out, &old.union(&new).cloned().collect())?;
    for (rel, bytes) in previews {
        let path = out.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(path, bytes)?;
    }
    fs::write(out.join("plan.json"), plan)?;
    for rel in old.difference(&new) {
        let path = out.join(rel);
        match fs::symlink_metadata(&path) {
            Ok(m) if !m.is_dir() => fs::remove_file(&path)?,
            _ => continue,
        }
        // Folders this left empty go too (never `out` itself); a folder
        // with anything else in it stays.
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == out || fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }
    write_manifest(out, &new)?;
    Ok(())
}
