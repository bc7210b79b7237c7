//! Reading a citizen-form post as it arrives: the text fields, bounded one
//! by one and together, then the photo, streamed into the blob store's
//! staging directory (the media worker's [`FileSink`]: hashed as it is
//! written, its first bytes kept) and never held in memory. Its type is
//! sniffed from its first bytes as soon as they are in: a file that is no
//! image is not written at all, one over `max_photo_bytes` stops being
//! written there. The staged file is removed unless it is stored.

use std::path::{Path, PathBuf};

use aduan_adapter::media::MediaSink;
use aduan_open311::FormFields;

use super::multipart::{Multipart, PartHead, ReadError};
use crate::media::sink::FileSink;

/// Longest text field accepted, in bytes (the description is the long one).
const MAX_TEXT_BYTES: usize = 20_000;

/// All text fields together, in bytes, and the most parts a post may have.
const MAX_TEXT_TOTAL: usize = 64 * 1024;
const MAX_PARTS: usize = 64;

/// How many first bytes of a photo are looked at before it is written.
const SNIFF_BYTES: usize = 512;

/// What a submission carried besides the photo.
#[derive(Default)]
pub(super) struct Posted {
    pub(super) fields: FormFields,
    /// The CSRF token the form repeated.
    pub(super) csrf: String,
    pub(super) form_id: String,
    pub(super) lang: Option<String>,
    /// What is wrong with the photo, when something is.
    pub(super) photo_problem: Option<PhotoProblem>,
    /// Text bytes and parts read so far.
    pub(super) text_bytes: usize,
    pub(super) parts: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PhotoProblem {
    TooLarge,
    NotAnImage,
}

/// Why a post could not be read whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// The body itself: malformed, over its limit or too slow.
    Read(ReadError),
    /// A text field, or the text fields together, are too long.
    TextTooLarge,
    /// The staging file could not be written.
    Unavailable,
}

impl From<ReadError> for Stop {
    fn from(e: ReadError) -> Self {
        Stop::Read(e)
    }
}

/// The photo, written whole to the staging directory. Dropped, the file
/// goes (after it was stored, there is nothing left to remove).
pub(super) struct StagedPhoto {
    pub(super) path: PathBuf,
    pub(super) sha256: String,
    pub(super) size: u64,
    /// Its type by its first bytes (`image/jpeg`, …).
    pub(super) content_type: &'static str,
    pub(super) filename: Option<String>,
}

impl Drop for StagedPhoto {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Removes a staging file being written if the write does not finish (an
/// error, or the client gone and the request's future dropped).
struct Unfinished(Option<PathBuf>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Reads text fields into `posted` up to the first file field, whose head
/// is returned with its data unread, or to the end of the body (`None`).
pub(super) async fn text_fields(
    body: &mut Multipart,
    posted: &mut Posted,
) -> Result<Option<PartHead>, Stop> {
    while let Some(head) = body.next_part().await? {
        posted.parts += 1;
        if posted.parts > MAX_PARTS {
            return Err(Stop::TextTooLarge);
        }
        if head.filename.is_some() {
            return Ok(Some(head));
        }
        let mut value = Vec::new();
        while let Some(chunk) = body.chunk().await? {
            posted.text_bytes += chunk.len();
            if value.len() + chunk.len() > MAX_TEXT_BYTES || posted.text_bytes > MAX_TEXT_TOTAL {
                return Err(Stop::TextTooLarge);
            }
            value.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&value).into_owned();
        match head.name.as_str() {
            "csrf" => posted.csrf = text,
            "form_id" => posted.form_id = text,
            "lang" => posted.lang = Some(text),
            other => {
                if let Some(slot) = posted.fields.field_mut(other) {
                    *slot = text;
                }
            }
        }
    }
    Ok(None)
}

/// Reads the whole post: the text fields into `posted`, and the photo
/// (the first file field named `photo`) into `staging`, up to `max` bytes.
/// Other file fields are skipped.
pub(super) async fn read(
    body: &mut Multipart,
    posted: &mut Posted,
    staging: &Path,
    max: u64,
) -> Result<Option<StagedPhoto>, Stop> {
    let mut photo = None;
    loop {
        let head = match text_fields(body, posted).await {
            Ok(Some(head)) => head,
            Ok(None) => return Ok(photo),
            // A body without `Content-Length` cut off past the limit while a
            // photo already too large was being dropped: what came before is kept.
            Err(Stop::Read(ReadError::TooLarge))
                if posted.photo_problem == Some(PhotoProblem::TooLarge) =>
            {
                return Ok(photo);
            }
            Err(e) => return Err(e),
        };
        if head.name != "photo" || photo.is_some() || posted.photo_problem.is_some() {
            continue;
        }
        match stage(body, head.filename, staging, max, posted).await {
            Ok(staged) => photo = staged,
            Err(Stop::Read(ReadError::TooLarge))
                if posted.photo_problem == Some(PhotoProblem::TooLarge) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Streams one photo into a staging file. `None` for an empty file field
/// (no file chosen) and for a refused photo (`posted.photo_problem` says why).
async fn stage(
    body: &mut Multipart,
    filename: Option<String>,
    staging: &Path,
    max: u64,
    posted: &mut Posted,
) -> Result<Option<StagedPhoto>, Stop> {
    let filename = filename.filter(|f| !f.is_empty());
    let mut first = Vec::with_capacity(SNIFF_BYTES);
    let mut sink: Option<(FileSink, Unfinished, &'static str)> = None;
    let mut size = 0u64;
    while let Some(chunk) = body.chunk().await? {
        if posted.photo_problem.is_some() {
            // Read and dropped, so that fields after it still count.
            continue;
        }
        size += chunk.len() as u64;
        if size > max {
            posted.photo_problem = Some(PhotoProblem::TooLarge);
            sink = None;
            continue;
        }
        if let Some((file, _, _)) = &mut sink {
            file.write(&chunk).await.map_err(|_| Stop::Unavailable)?;
            continue;
        }
        first.extend_from_slice(&chunk);
        if first.len() >= SNIFF_BYTES {
            sink = open(staging, max, &first, posted).await?;
            first = Vec::new();
        }
    }
    if posted.photo_problem.is_some() {
        return Ok(None);
    }
    if sink.is_none() {
        if first.is_empty() {
            return Ok(None);
        }
        sink = open(staging, max, &first, posted).await?;
    }
    let Some((file, mut unfinished, content_type)) = sink else {
        return Ok(None);
    };
    let staged = file.finish().await.map_err(|_| Stop::Unavailable)?;
    unfinished.0 = None;
    Ok(Some(StagedPhoto {
        path: staged.path,
        sha256: staged.sha256,
        size: staged.size,
        content_type,
        filename,
    }))
}

/// The staging file for a photo whose first bytes are `first`, with them
/// written; `None` (and the problem noted) when they are no image's.
async fn open(
    staging: &Path,
    max: u64,
    first: &[u8],
    posted: &mut Posted,
) -> Result<Option<(FileSink, Unfinished, &'static str)>, Stop> {
    let Some(content_type) = crate::media::sniff::sniff(first).filter(|t| t.starts_with("image/"))
    else {
        posted.photo_problem = Some(PhotoProblem::NotAnImage);
        return Ok(None);
    };
    let mut file = FileSink::create(staging, max)
        .await
        .map_err(|_| Stop::Unavailable)?;
    let unfinished = Unfinished(Some(file.path().to_path_buf()));
    file.write(first).await.map_err(|_| Stop::Unavailable)?;
    Ok(Some((file, unfinished, content_type)))
}
