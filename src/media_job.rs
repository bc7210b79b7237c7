//! A complaint's media job: which of its attachments are to be fetched.
//! Written by the append step beside the complaint, read by the media worker.

use aduan_adapter::media::MediaFetcher;
use aduan_adapter::{Attachment, Complaint, Timestamp};
use serde::{Deserialize, Serialize};

/// One job on the media stream (field `job`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MediaJob {
    pub complaint_id: String,
    pub instance: String,
    /// When the complaint was received: provider links are counted from here.
    pub received_at: Timestamp,
    pub attachments: Vec<Indexed>,
}

/// An attachment and its place in the complaint's `attachments`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Indexed {
    pub index: usize,
    pub attachment: Attachment,
}

/// The job of `c` as JSON, or `""` when `fetcher` can get none of its attachments.
pub fn job_json(c: &Complaint, fetcher: &dyn MediaFetcher) -> String {
    let attachments: Vec<Indexed> = c
        .attachments
        .iter()
        .enumerate()
        .filter(|(_, a)| a.storage_key.is_none() && fetcher.fetchable(a))
        .map(|(index, a)| Indexed {
            index,
            attachment: a.clone(),
        })
        .collect();
    if attachments.is_empty() {
        return String::new();
    }
    serde_json::to_string(&MediaJob {
        complaint_id: c.id.clone(),
        instance: c.instance.clone(),
        received_at: c.received_at,
        attachments,
    })
    .unwrap_or_default()
}
