//! The content type of a file from its first bytes, recorded beside the
//! type the provider declared: a citizen's "photo" that is really a PDF, or
//! a provider that labels every voice note `application/octet-stream`.

/// The type the first bytes show, for the formats citizens send.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    let starts = |magic: &[u8]| head.starts_with(magic);
    let at = |offset: usize, magic: &[u8]| {
        head.len() >= offset + magic.len() && &head[offset..offset + magic.len()] == magic
    };
    if starts(&[0xFF, 0xD8, 0xFF]) {
        return Some("image/jpeg");
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Some("image/png");
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Some("image/gif");
    }
    if starts(b"RIFF") && at(8, b"WEBP") {
        return Some("image/webp");
    }
    if starts(b"RIFF") && at(8, b"WAVE") {
        return Some("audio/wav");
    }
    if starts(b"%PDF-") {
        return Some("application/pdf");
    }
    if starts(b"OggS") {
        // WhatsApp and Telegram voice notes: Opus in Ogg.
        return Some("audio/ogg");
    }
    if starts(b"#!AMR") {
        return Some("audio/amr");
    }
    if starts(b"ID3") || starts(&[0xFF, 0xFB]) || starts(&[0xFF, 0xF3]) || starts(&[0xFF, 0xF2]) {
        return Some("audio/mpeg");
    }
    if at(4, b"ftyp") {
        return Some(match head.get(8..11) {
            Some(b"3gp") => "video/3gpp",
            Some(b"M4A") => "audio/mp4",
            Some(b"hei") | Some(b"mif") => "image/heic",
            _ => "video/mp4",
        });
    }
    if starts(b"PK\x03\x04") {
        // Office documents and other zip containers.
        return Some("application/zip");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::sniff;

    #[test]
    fn the_first_bytes_tell_the_formats_citizens_send() {
        assert_eq!(
            sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]),
            Some("image/jpeg")
        );
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0"), Some("image/png"));
        assert_eq!(sniff(b"OggS\0\x02"), Some("audio/ogg"));
        assert_eq!(sniff(b"\0\0\0\x18ftypmp42"), Some("video/mp4"));
        assert_eq!(sniff(b"\0\0\0\x14ftyp3gp4"), Some("video/3gpp"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"%PDF-1.7"), Some("application/pdf"));
        assert_eq!(sniff(b"hello"), None);
        assert_eq!(sniff(b""), None);
    }
}
