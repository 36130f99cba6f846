//! From an uploaded file to its text.

use std::io::Read;

use super::kind::{FileKind, ParseError};

/// The file's text, at most `max_chars` characters of it, and no zip entry read past
/// `max_entry_bytes`. Each reader is linear in its input and stops at the limits as it reads; a
/// malformed file is an error, never a crash. Run it in [`super::sandbox`] to bound its time and
/// memory too.
pub fn extract_text(
    name: &str,
    kind: FileKind,
    bytes: &[u8],
    max_chars: usize,
    max_entry_bytes: u64,
) -> Result<String, ParseError> {
    let unreadable =
        |kind: &str, reason: String| ParseError::Unreadable { file: name.to_string(), kind: kind.to_string(), reason };
    let too_much = || ParseError::TooMuchText { file: name.to_string(), limit: max_chars };
    let mut text = TextBudget::new(max_chars);
    match kind {
        FileKind::Text => {
            let whole = std::str::from_utf8(bytes).map_err(|_| unreadable("text", "it is not UTF-8".into()))?;
            text.push(whole);
        }
        FileKind::Html => html_text(&String::from_utf8_lossy(bytes), &mut text),
        FileKind::Pdf => {
            let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pdf_text(bytes, &mut text)));
            match parsed {
                Ok(Ok(())) => {}
                Ok(Err(_)) if text.over => {}
                Ok(Err(error)) => return Err(unreadable("PDF", error.to_string())),
                Err(_) => return Err(unreadable("PDF", "its structure is broken".into())),
            }
        }
        FileKind::Docx => match docx_text(bytes, max_entry_bytes, &mut text) {
            Ok(()) => {}
            Err(DocxError::Inflates) => {
                return Err(ParseError::InflatesTooMuch { file: name.to_string(), limit: max_entry_bytes })
            }
            Err(DocxError::Unreadable(_)) if text.over => {}
            Err(DocxError::Unreadable(reason)) => return Err(unreadable("Word (.docx)", reason)),
        },
    }
    if text.over {
        return Err(too_much());
    }
    if text.text.trim().is_empty() {
        let hint = if kind == FileKind::Pdf { " (a scanned PDF needs text recognition first)" } else { "" };
        return Err(ParseError::NoText { file: name.to_string(), hint: hint.to_string() });
    }
    Ok(text.text)
}

/// Text gathered up to a number of characters; past it, nothing more is kept and `over` says so.
struct TextBudget {
    text: String,
    chars: usize,
    max_chars: usize,
    over: bool,
}

impl TextBudget {
    fn new(max_chars: usize) -> Self {
        TextBudget { text: String::new(), chars: 0, max_chars, over: false }
    }

    /// Adds `piece`; false once the budget is spent.
    fn push(&mut self, piece: &str) -> bool {
        if self.over {
            return false;
        }
        let count = piece.chars().count();
        if self.chars + count > self.max_chars {
            self.over = true;
            return false;
        }
        self.chars += count;
        self.text.push_str(piece);
        true
    }
}

impl std::fmt::Write for &mut TextBudget {
    fn write_str(&mut self, piece: &str) -> std::fmt::Result {
        if self.push(piece) {
            Ok(())
        } else {
            Err(std::fmt::Error)
        }
    }
}

impl<'a> pdf_extract::ConvertToFmt for &'a mut TextBudget {
    type Writer = &'a mut TextBudget;
    fn convert(self) -> Self::Writer {
        self
    }
}

/// A PDF's text, written into `text` page by page; an encrypted one is opened with the empty
/// password, as viewers do.
fn pdf_text(bytes: &[u8], text: &mut TextBudget) -> Result<(), pdf_extract::OutputError> {
    let mut document = pdf_extract::Document::load_mem(bytes)?;
    let mut output = pdf_extract::PlainTextOutput::new(text);
    if document.is_encrypted() {
        pdf_extract::output_doc_encrypted(&mut document, &mut output, "")
    } else {
        pdf_extract::output_doc(&document, &mut output)
    }
}

/// The visible text of an HTML page: no scripts, styles or markup, a line per text block. Read by
/// the HTML tokenizer alone, with no tree: time and memory are linear in the page, however deep
/// it nests.
fn html_text(html: &str, text: &mut TextBudget) {
    use html5ever::tendril::StrTendril;
    use html5ever::tokenizer::{BufferQueue, Tokenizer};
    let sink =
        HtmlText { text: std::cell::RefCell::new(std::mem::replace(text, TextBudget::new(0))), ..HtmlText::default() };
    let tokenizer = Tokenizer::new(sink, Default::default());
    let input = BufferQueue::default();
    // Fed in pieces, so a page past the budget stops being read.
    let mut rest = html;
    while !rest.is_empty() && !tokenizer.sink.text.borrow().over {
        let mut cut = rest.len().min(64 << 10);
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        input.push_back(StrTendril::from_slice(&rest[..cut]));
        let _ = tokenizer.feed(&input);
        rest = &rest[cut..];
    }
    tokenizer.end();
    let sink = tokenizer.sink;
    sink.flush();
    *text = sink.text.into_inner();
}

/// What the HTML tokenizer's tokens leave as text: blocks of characters between tags, outside
/// the elements a page does not show.
#[derive(Default)]
struct HtmlText {
    text: std::cell::RefCell<TextBudget>,
    /// Characters since the last tag.
    pending: std::cell::RefCell<String>,
    /// How many hidden elements (`noscript`, `template`) are open, and whether `head` is.
    hidden: std::cell::Cell<usize>,
    in_head: std::cell::Cell<bool>,
    /// Inside a `script`, `style` or `title`: not shown.
    in_raw: std::cell::Cell<bool>,
}

impl Default for TextBudget {
    fn default() -> Self {
        TextBudget::new(0)
    }
}

impl HtmlText {
    fn flush(&self) {
        let block = self.pending.take();
        let block = block.split_whitespace().collect::<Vec<_>>().join(" ");
        let shown = self.hidden.get() == 0 && !self.in_head.get() && !self.in_raw.get();
        if shown && !block.is_empty() {
            let mut text = self.text.borrow_mut();
            if !text.text.is_empty() {
                text.push("\n");
            }
            text.push(&block);
        }
    }
}

impl html5ever::tokenizer::TokenSink for HtmlText {
    type Handle = ();

    fn process_token(
        &self,
        token: html5ever::tokenizer::Token,
        _line: u64,
    ) -> html5ever::tokenizer::TokenSinkResult<()> {
        use html5ever::tokenizer::states::RawKind;
        use html5ever::tokenizer::{TagKind, Token, TokenSinkResult};
        match token {
            Token::CharacterTokens(characters) => {
                let mut pending = self.pending.borrow_mut();
                // A block longer than the whole budget need not be kept whole to be refused.
                if pending.len() <= self.text.borrow().max_chars.saturating_mul(4) {
                    pending.push_str(&characters);
                }
            }
            Token::TagToken(tag) => {
                self.flush();
                let name: &str = &tag.name;
                let start = tag.kind == TagKind::StartTag;
                match name {
                    "script" | "style" | "title" | "textarea" | "xmp" | "iframe" | "noembed" | "noframes" => {
                        // Their content is raw text; of those, a page shows none of these three.
                        if matches!(name, "script" | "style" | "title") {
                            self.in_raw.set(start && !tag.self_closing);
                        }
                        if start && !tag.self_closing {
                            let kind = match name {
                                "script" => RawKind::ScriptData,
                                "title" | "textarea" => RawKind::Rcdata,
                                _ => RawKind::Rawtext,
                            };
                            return TokenSinkResult::RawData(kind);
                        }
                    }
                    "noscript" | "template" if start => self.hidden.set(self.hidden.get() + 1),
                    "noscript" | "template" => self.hidden.set(self.hidden.get().saturating_sub(1)),
                    "head" => self.in_head.set(start),
                    "body" if start => self.in_head.set(false),
                    _ => {}
                }
            }
            Token::EOFToken => self.flush(),
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

enum DocxError {
    /// `word/document.xml` inflates past the limit.
    Inflates,
    Unreadable(String),
}

/// Counts what passes through, so an entry cut at the limit is known for one.
struct Counted<R> {
    inner: R,
    count: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.count.set(self.count.get() + read as u64);
        Ok(read)
    }
}

/// The paragraphs of a .docx: its `word/document.xml`, `w:t` runs joined, a line per `w:p`. The
/// XML is read as it inflates (never whole in memory), up to `max_entry_bytes`; the reader
/// expands no entity a document defines, and keeps no tree, so nesting costs nothing.
fn docx_text(bytes: &[u8], max_entry_bytes: u64, text: &mut TextBudget) -> Result<(), DocxError> {
    use quick_xml::events::Event;
    let unreadable = |error: &dyn std::fmt::Display| DocxError::Unreadable(error.to_string());
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| unreadable(&e))?;
    let entry = archive
        .by_name("word/document.xml")
        .map_err(|_| DocxError::Unreadable("it has no word/document.xml".into()))?;
    if entry.size() > max_entry_bytes {
        return Err(DocxError::Inflates);
    }
    let count = std::rc::Rc::new(std::cell::Cell::new(0));
    let counted = Counted { inner: entry.take(max_entry_bytes + 1), count: count.clone() };
    let mut reader = quick_xml::Reader::from_reader(std::io::BufReader::new(counted));
    let mut buffer = Vec::new();
    let mut in_run_text = false;
    loop {
        let event = reader.read_event_into(&mut buffer);
        if count.get() > max_entry_bytes {
            return Err(DocxError::Inflates);
        }
        let kept = match event.map_err(|e| unreadable(&e))? {
            Event::Start(element) if element.name().as_ref() == b"w:t" => {
                in_run_text = true;
                true
            }
            Event::End(element) if element.name().as_ref() == b"w:t" => {
                in_run_text = false;
                true
            }
            Event::End(element) if element.name().as_ref() == b"w:p" => text.push("\n"),
            Event::Empty(element) if element.name().as_ref() == b"w:tab" => text.push("\t"),
            Event::Empty(element) if element.name().as_ref() == b"w:br" => text.push("\n"),
            Event::Text(run) if in_run_text => text.push(&run.unescape().map_err(|e| unreadable(&e))?),
            Event::Eof => return Ok(()),
            _ => true,
        };
        if !kept {
            return Ok(());
        }
        buffer.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_loses_scripts_styles_and_markup() {
        let html = "<html><head><title>T</title><style>p{}</style></head><body><h1>Moon facts</h1>\
                    <script>alert(1)</script><p>The moon base is <b>Tranquility</b>.</p></body></html>";
        let mut text = TextBudget::new(1000);
        html_text(html, &mut text);
        assert_eq!(text.text, "Moon facts\nThe moon base is\nTranquility\n.");
    }

    #[test]
    fn broken_files_are_errors_that_name_them() {
        let error = extract_text("rover.pdf", FileKind::Pdf, b"%PDF-1.4 not really", 1000, 1000).unwrap_err();
        assert!(error.to_string().starts_with("rover.pdf could not be read as PDF"), "{error}");
        let error = extract_text("memo.docx", FileKind::Docx, b"PK\x03\x04 truncated", 1000, 1000).unwrap_err();
        assert!(error.to_string().starts_with("memo.docx could not be read as Word"), "{error}");
    }
}
