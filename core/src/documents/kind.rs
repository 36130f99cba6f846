//! What kind of file an upload is, from its name, and from its first bytes when the name has no
//! extension, as OpenGPTs decides it; a name without an extension that holds plain text is read
//! as text (OpenGPTs fails on it). Every function can answer this; reading is `parse`'s.

/// The kinds of file that can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Pdf,
    Text,
    Html,
    Docx,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ParseError {
    #[error(
        "{file}: files of this type ({kind}) cannot be read; send PDF, plain text, Markdown, HTML or Word (.docx)"
    )]
    Unsupported { file: String, kind: String },
    #[error("{file} is empty")]
    Empty { file: String },
    #[error("{file} could not be read as {kind}: {reason}")]
    Unreadable { file: String, kind: String, reason: String },
    #[error("{file} holds no text{hint}")]
    NoText { file: String, hint: String },
    #[error("{file} holds more than {limit} characters of text (MAX_INGEST_TEXT_CHARS); split it, or raise the limit")]
    TooMuchText { file: String, limit: usize },
    #[error("{file} inflates past {limit} bytes (MAX_ZIP_ENTRY_BYTES): it is refused as a decompression bomb")]
    InflatesTooMuch { file: String, limit: u64 },
    #[error("{file} would be {chunks} chunks; one file may be at most {limit} (MAX_CHUNKS_PER_FILE)")]
    TooManyChunks { file: String, chunks: usize, limit: usize },
    #[error("{file} took more than the {seconds} s an upload's files may take to read (INGEST_FILE_SECONDS) and was abandoned")]
    TooSlow { file: String, seconds: u64 },
    #[error("{file} needed more than {megabytes} MB of memory to read (INGEST_FILE_MEMORY_MB) and was abandoned")]
    TooLarge { file: String, megabytes: u64 },
}

const TEXT_EXTENSIONS: [&str; 9] = ["txt", "text", "md", "markdown", "csv", "tsv", "log", "rst", "org"];

/// What `name` and `bytes` are, or why they cannot be read.
pub fn detect(name: &str, bytes: &[u8]) -> Result<FileKind, ParseError> {
    if bytes.is_empty() {
        return Err(ParseError::Empty { file: name.to_string() });
    }
    let extension = std::path::Path::new(name).extension().and_then(|e| e.to_str()).map(str::to_lowercase);
    let unsupported = |kind: &str| ParseError::Unsupported { file: name.to_string(), kind: kind.to_string() };
    match extension.as_deref() {
        Some("pdf") => Ok(FileKind::Pdf),
        Some("html" | "htm" | "xhtml") => Ok(FileKind::Html),
        Some("docx") => Ok(FileKind::Docx),
        Some("doc") => Err(unsupported("Word 97-2003 .doc; save it as .docx")),
        Some(text) if TEXT_EXTENSIONS.contains(&text) => Ok(FileKind::Text),
        Some(other) => Err(unsupported(&format!(".{other}"))),
        None => sniff(bytes).ok_or_else(|| unsupported("unrecognised binary data")),
    }
}

fn sniff(bytes: &[u8]) -> Option<FileKind> {
    if bytes.starts_with(b"%PDF-") {
        return Some(FileKind::Pdf);
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return bytes.windows(17).any(|w| w == b"word/document.xml").then_some(FileKind::Docx);
    }
    let text = std::str::from_utf8(bytes).ok().filter(|text| !text.contains('\0'))?;
    let start = text.trim_start().get(..15).unwrap_or(text.trim_start()).to_lowercase();
    Some(if start.starts_with("<!doctype html") || start.starts_with("<html") {
        FileKind::Html
    } else {
        FileKind::Text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_decides_then_the_bytes() {
        assert_eq!(detect("notes.TXT", b"hi"), Ok(FileKind::Text));
        assert_eq!(detect("page.htm", b"<p>hi"), Ok(FileKind::Html));
        assert_eq!(detect("notes", b"plain words\nmore"), Ok(FileKind::Text));
        assert_eq!(detect("page", b"  <!DOCTYPE html><p>x"), Ok(FileKind::Html));
        assert_eq!(detect("scan", b"%PDF-1.4 ..."), Ok(FileKind::Pdf));
        assert!(matches!(detect("data.json", b"{}"), Err(ParseError::Unsupported { .. })));
        assert!(matches!(detect("blob", &[0, 159, 146, 150]), Err(ParseError::Unsupported { .. })));
        assert_eq!(detect("empty.txt", b""), Err(ParseError::Empty { file: "empty.txt".into() }));
        let error = detect("old.doc", b"x").unwrap_err().to_string();
        assert!(error.contains("old.doc") && error.contains(".docx"), "{error}");
    }
}
