//! From an uploaded file to its text. The type comes from the file's name, and from its first
//! bytes when the name has no extension, as OpenGPTs decides it; a name without an extension
//! that holds plain text is read as text (OpenGPTs fails on it).

use std::io::Read;

/// The kinds of file that can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Pdf,
    Text,
    Html,
    Docx,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error(
        "{file}: files of this type ({kind}) cannot be read; send PDF, plain text, Markdown, HTML or Word (.docx)"
    )]
    Unsupported { file: String, kind: String },
    #[error("{file} is empty")]
    Empty { file: String },
    #[error("{file} could not be read as {kind}: {reason}")]
    Unreadable { file: String, kind: &'static str, reason: String },
    #[error("{file} holds no text{hint}")]
    NoText { file: String, hint: &'static str },
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

/// The file's text. PDF parsing runs guarded: a malformed file is an error, never a crash.
pub fn extract_text(name: &str, kind: FileKind, bytes: &[u8]) -> Result<String, ParseError> {
    let unreadable =
        |kind: &'static str, reason: String| ParseError::Unreadable { file: name.to_string(), kind, reason };
    let text = match kind {
        FileKind::Text => {
            String::from_utf8(bytes.to_vec()).map_err(|_| unreadable("text", "it is not UTF-8".into()))?
        }
        FileKind::Html => html_text(&String::from_utf8_lossy(bytes)),
        FileKind::Pdf => {
            let parsed = std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem(bytes));
            match parsed {
                Ok(Ok(text)) => text,
                Ok(Err(error)) => return Err(unreadable("PDF", error.to_string())),
                Err(_) => return Err(unreadable("PDF", "its structure is broken".into())),
            }
        }
        FileKind::Docx => docx_text(bytes).map_err(|reason| unreadable("Word (.docx)", reason))?,
    };
    if text.trim().is_empty() {
        let hint = if kind == FileKind::Pdf { " (a scanned PDF needs text recognition first)" } else { "" };
        return Err(ParseError::NoText { file: name.to_string(), hint });
    }
    Ok(text)
}

/// The visible text of an HTML page: no scripts, styles or markup, a line per text block.
fn html_text(html: &str) -> String {
    let document = scraper::Html::parse_document(html);
    let hidden = ["script", "style", "noscript", "template", "head"];
    let mut lines = Vec::new();
    for node in document.root_element().descendants() {
        let Some(text) = node.value().as_text() else { continue };
        let inside_hidden = node
            .ancestors()
            .filter_map(|ancestor| ancestor.value().as_element())
            .any(|element| hidden.contains(&element.name()));
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if !inside_hidden && !text.is_empty() {
            lines.push(text);
        }
    }
    lines.join("\n")
}

/// The paragraphs of a .docx: its `word/document.xml`, `w:t` runs joined, a line per `w:p`.
fn docx_text(bytes: &[u8]) -> Result<String, String> {
    use quick_xml::events::Event;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|error| error.to_string())?;
    let mut xml = String::new();
    archive
        .by_name("word/document.xml")
        .map_err(|_| "it has no word/document.xml".to_string())?
        .take(64 << 20)
        .read_to_string(&mut xml)
        .map_err(|error| error.to_string())?;
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut text, mut in_run_text) = (String::new(), false);
    loop {
        match reader.read_event().map_err(|error| error.to_string())? {
            Event::Start(element) if element.name().as_ref() == b"w:t" => in_run_text = true,
            Event::End(element) if element.name().as_ref() == b"w:t" => in_run_text = false,
            Event::End(element) if element.name().as_ref() == b"w:p" => text.push('\n'),
            Event::Empty(element) if element.name().as_ref() == b"w:tab" => text.push('\t'),
            Event::Empty(element) if element.name().as_ref() == b"w:br" => text.push('\n'),
            Event::Text(run) if in_run_text => text.push_str(&run.unescape().map_err(|error| error.to_string())?),
            Event::Eof => return Ok(text),
            _ => {}
        }
    }
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

    #[test]
    fn html_loses_scripts_styles_and_markup() {
        let html = "<html><head><title>T</title><style>p{}</style></head><body><h1>Moon facts</h1>\
                    <script>alert(1)</script><p>The moon base is <b>Tranquility</b>.</p></body></html>";
        assert_eq!(html_text(html), "Moon facts\nThe moon base is\nTranquility\n.");
    }

    #[test]
    fn broken_files_are_errors_that_name_them() {
        let error = extract_text("rover.pdf", FileKind::Pdf, b"%PDF-1.4 not really").unwrap_err();
        assert!(error.to_string().starts_with("rover.pdf could not be read as PDF"), "{error}");
        let error = extract_text("memo.docx", FileKind::Docx, b"PK\x03\x04 truncated").unwrap_err();
        assert!(error.to_string().starts_with("memo.docx could not be read as Word"), "{error}");
    }
}
