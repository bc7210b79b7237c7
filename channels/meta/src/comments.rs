//! Public comments: Facebook Page `feed` changes and Instagram `comments`
//! changes.
//!
//! A comment is grouped by the post it was written under, not by its author:
//! `thread.conversation` is the post (or media) id, so an agency sees the
//! whole public discussion of one post together. Only new comments by
//! someone other than the account itself are complaints; edits, removals and
//! moderation are acknowledged and not written.

use aduan_adapter::{
    Attachment, AttachmentKind, Channel, Complaint, Context, Rejection, Request, Timestamp,
};
use serde::Deserialize;

use crate::hub::{self, Batch};
use crate::messaging::Entry;

/// The `provider` of Facebook Page comments.
pub const FEED_PROVIDER: &str = "facebook_feed";

/// The sender id when Meta withholds the commenter (they did not grant the
/// app visibility); there is no stable id to use instead.
const UNKNOWN_SENDER: &str = "unknown";

#[derive(Debug, Deserialize)]
struct FeedValue {
    item: String,
    verb: String,
    comment_id: Option<String>,
    post_id: Option<String>,
    parent_id: Option<String>,
    from: Option<FeedFrom>,
    message: Option<String>,
    created_time: Option<i64>,
    photo: Option<String>,
    video: Option<String>,
}

#[derive(Debug, Deserialize)]
struct FeedFrom {
    id: String,
    name: Option<String>,
}

/// Reads one `feed` change of a page.
pub fn feed(
    entry: &Entry,
    value: &serde_json::Value,
    at: &str,
    req: &Request<'_>,
    ctx: &Context<'_>,
    batch: &mut Batch,
) -> Result<(), Rejection> {
    let v: FeedValue = hub::decode_value(value, at)?;
    if v.item != "comment" {
        batch.ignore("feed_item");
        return Ok(());
    }
    match v.verb.as_str() {
        "add" => {}
        "edited" => return ignore(batch, "edit"),
        "remove" => return ignore(batch, "removal"),
        _ => return ignore(batch, "moderation"),
    }
    if v.from.as_ref().is_some_and(|f| f.id == entry.id) {
        return ignore(batch, "own_comment");
    }
    let missing = |f: &str| Rejection::malformed(format!("missing field `{f}` at {at}"));
    let comment_id = v.comment_id.ok_or_else(|| missing("comment_id"))?;
    let post_id = v.post_id.ok_or_else(|| missing("post_id"))?;
    let author = v.from.as_ref().map_or(UNKNOWN_SENDER, |f| f.id.as_str());
    let mut complaint = Complaint::new(
        ctx,
        Channel::Facebook,
        FEED_PROVIDER,
        comment_id,
        format!("facebook:{author}"),
    );
    complaint.sender.name = v.from.and_then(|f| f.name).filter(|n| !n.is_empty());
    complaint.sent_at = v
        .created_time
        .and_then(Timestamp::from_unix_seconds)
        .or_else(|| entry.time.and_then(hub::seconds_or_millis));
    complaint.recipient = Some(entry.id.clone());
    complaint.text = v.message.unwrap_or_default();
    complaint.thread.conversation = post_id;
    complaint.thread.in_reply_to = v.parent_id;
    for (url, kind) in [
        (v.photo, AttachmentKind::Image),
        (v.video, AttachmentKind::Video),
    ] {
        if let Some(url) = url {
            complaint.attachments.push(Attachment {
                url: Some(url),
                ..Attachment::new(kind)
            });
        }
    }
    complaint.raw = hub::raw(req, ctx);
    batch.complaints.push(complaint);
    Ok(())
}

#[derive(Debug, Deserialize)]
struct IgComment {
    id: String,
    text: Option<String>,
    from: Option<IgFrom>,
    media: Option<IgMedia>,
    parent_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct IgFrom {
    id: String,
    username: Option<String>,
}

#[derive(Debug, Deserialize)]
struct IgMedia {
    id: String,
}

/// Reads one `comments` change of an Instagram account.
pub fn instagram(
    entry: &Entry,
    value: &serde_json::Value,
    at: &str,
    req: &Request<'_>,
    ctx: &Context<'_>,
    batch: &mut Batch,
) -> Result<(), Rejection> {
    let v: IgComment = hub::decode_value(value, at)?;
    if v.from.as_ref().is_some_and(|f| f.id == entry.id) {
        return ignore(batch, "own_comment");
    }
    let media = v
        .media
        .ok_or_else(|| Rejection::malformed(format!("missing field `media` at {at}")))?;
    let author = v.from.as_ref().map_or(UNKNOWN_SENDER, |f| f.id.as_str());
    let mut complaint = Complaint::new(
        ctx,
        Channel::Instagram,
        crate::instagram::PROVIDER,
        v.id,
        format!("instagram:{author}"),
    );
    complaint.sender.handle = v
        .from
        .and_then(|f| f.username)
        .filter(|u| !u.is_empty())
        .map(|u| format!("@{u}"));
    // Instagram comment values carry no time of their own.
    complaint.sent_at = entry.time.and_then(hub::seconds_or_millis);
    complaint.recipient = Some(entry.id.clone());
    complaint.text = v.text.unwrap_or_default();
    // As on Facebook, a top-level comment answers the post itself.
    complaint.thread.in_reply_to = Some(v.parent_id.unwrap_or_else(|| media.id.clone()));
    complaint.thread.conversation = media.id;
    complaint.raw = hub::raw(req, ctx);
    batch.complaints.push(complaint);
    Ok(())
}

fn ignore(batch: &mut Batch, reason: &'static str) -> Result<(), Rejection> {
    batch.ignore(reason);
    Ok(())
}
