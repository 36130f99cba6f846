//! Hostile files, made on the spot (no blobs in the repository): decompression bombs, deep
//! nesting, entity expansion, broken and cyclic PDFs, pathological Unicode. Each fits a 4 MiB
//! upload and says what the server must answer. Used by the tests and by `make bench`.

use std::io::Write;

/// What the server must answer to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Accepted, and this text is found in it.
    Accepted(&'static str),
    /// Refused with this status, the detail naming the file and containing this.
    Refused(u16, &'static str),
}

pub struct HostileFile {
    pub name: &'static str,
    pub what: &'static str,
    pub bytes: Vec<u8>,
    pub expect: Expect,
}

const WORD_NS: &str = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";

/// A zip holding `entries` (name, bytes written in pieces by `write`), deflated.
type Entry = (String, Box<dyn Fn(&mut dyn Write)>);

fn entry(name: &str, write: impl Fn(&mut dyn Write) + 'static) -> Entry {
    (name.to_string(), Box::new(write))
}

fn zip_of(entries: Vec<Entry>) -> Vec<u8> {
    let mut archive = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated).large_file(true);
    for (name, write) in entries {
        archive.start_file(name.as_str(), options).unwrap();
        write(&mut archive);
    }
    archive.finish().unwrap().into_inner()
}

/// A .docx whose `word/document.xml` is the prologue, `write`'s body, and the epilogue.
fn docx_with(body: impl Fn(&mut dyn Write) + 'static) -> Vec<u8> {
    zip_of(vec![
        entry("[Content_Types].xml", |out| out.write_all(b"<Types/>").unwrap()),
        entry("word/document.xml", move |out| {
            write!(out, "<?xml version=\"1.0\"?><w:document xmlns:w=\"{WORD_NS}\"><w:body>").unwrap();
            body(out);
            out.write_all(b"</w:body></w:document>").unwrap();
        }),
    ])
}

/// `piece` written `times` times.
fn repeat(out: &mut dyn Write, piece: &[u8], times: usize) {
    let block = piece.repeat((1 << 20) / piece.len().max(1) + 1);
    let mut left = piece.len() * times;
    while left > 0 {
        let take = left.min(block.len());
        out.write_all(&block[..take]).unwrap();
        left -= take;
    }
}

/// A PDF of these objects (numbered from 1; the first is the catalog), its cross-reference table
/// correct unless `broken_xref`.
fn pdf_of(objects: &[Vec<u8>], broken_xref: bool) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        offsets.push(if broken_xref { 7 * index + 3 } else { out.len() });
        write!(out, "{} 0 obj\n", index + 1).unwrap();
        out.extend_from_slice(object);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    write!(out, "xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).unwrap();
    for offset in offsets {
        writeln!(out, "{offset:010} 00000 n ").unwrap();
    }
    write!(out, "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).unwrap();
    out
}

pub fn stream_object(dictionary: &str, content: &[u8]) -> Vec<u8> {
    let mut object = format!("<< {dictionary} /Length {} >>\nstream\n", content.len()).into_bytes();
    object.extend_from_slice(content);
    object.extend_from_slice(b"\nendstream");
    object
}

const FONT: &str = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>";

/// A one-page PDF whose page draws `content`, with `extra` objects after the five it needs.
pub fn pdf_page(content: Vec<u8>, extra: Vec<Vec<u8>>, broken_xref: bool) -> Vec<u8> {
    let mut objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_vec(),
        content,
        FONT.as_bytes().to_vec(),
    ];
    objects.extend(extra);
    pdf_of(&objects, broken_xref)
}

/// A zlib stream (PDF's FlateDecode) of what `write` writes.
fn deflate(write: impl Fn(&mut dyn Write)) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    write(&mut encoder);
    encoder.finish().unwrap()
}

/// Every hostile file, with what the server must answer under its default limits.
pub fn corpus() -> Vec<HostileFile> {
    let paragraph = format!("<w:p><w:r><w:t>{}</w:t></w:r></w:p>", "zorblax hums at dawn ".repeat(48));
    let nested_zip = zip_of(vec![entry("inner.docx", |out| repeat(out, b"PK\x03\x04", 1000))]);
    vec![
        HostileFile {
            name: "text-bomb.docx",
            what: "a .docx whose one entry inflates to 50 MB of text",
            bytes: docx_with(move |out| repeat(out, paragraph.as_bytes(), (50 << 20) / paragraph.len())),
            expect: Expect::Refused(413, "MAX_INGEST_TEXT_CHARS"),
        },
        HostileFile {
            name: "markup-bomb.docx",
            what: "a .docx whose one entry inflates to 300 MB of markup",
            bytes: docx_with(|out| repeat(out, b"<w:x/>", (300 << 20) / 6)),
            expect: Expect::Refused(413, "MAX_ZIP_ENTRY_BYTES"),
        },
        HostileFile {
            name: "many-entries.docx",
            what: "a .docx of 25,000 entries besides its text",
            bytes: {
                let mut entries: Vec<Entry> =
                    (0..25_000).map(|i| entry(&format!("junk/{i}"), |out| out.write_all(b"x").unwrap())).collect();
                entries.push(entry("word/document.xml", |out| {
                    write!(out, "<w:document xmlns:w=\"{WORD_NS}\"><w:body><w:p><w:r><w:t>The zorblax hums.</w:t></w:r></w:p></w:body></w:document>").unwrap()
                }));
                zip_of(entries)
            },
            expect: Expect::Accepted("The zorblax hums."),
        },
        HostileFile {
            name: "nested.docx",
            what: "a .docx whose document is another archive",
            bytes: zip_of(vec![entry("word/document.xml", move |out| out.write_all(&nested_zip).unwrap())]),
            expect: Expect::Refused(422, "holds no text"),
        },
        HostileFile {
            name: "deep.docx",
            what: "a .docx whose XML nests 500,000 deep",
            bytes: docx_with(|out| {
                repeat(out, b"<w:x>", 500_000);
                out.write_all(b"<w:p><w:r><w:t>Deep zorblax.</w:t></w:r></w:p>").unwrap();
                repeat(out, b"</w:x>", 500_000);
            }),
            expect: Expect::Accepted("Deep zorblax."),
        },
        HostileFile {
            name: "laughs.docx",
            what: "a .docx whose XML defines entities that expand a billion times",
            bytes: zip_of(vec![entry("word/document.xml", |out| {
                out.write_all(b"<?xml version=\"1.0\"?><!DOCTYPE w:document [<!ENTITY lol \"lol\">").unwrap();
                for level in 1..10 {
                    let previous = if level == 1 { "lol".to_string() } else { format!("lol{}", level - 1) };
                    write!(out, "<!ENTITY lol{level} \"{}\">", format!("&{previous};").repeat(10)).unwrap();
                }
                write!(out, "]><w:document xmlns:w=\"{WORD_NS}\"><w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>").unwrap();
            })]),
            expect: Expect::Refused(422, "could not be read as Word"),
        },
        HostileFile {
            name: "deep.html",
            what: "HTML nested 360,000 deep",
            bytes: {
                let mut page = Vec::new();
                repeat(&mut page, b"<div>", 360_000);
                page.extend_from_slice(b"Deep zorblax.");
                repeat(&mut page, b"</div>", 360_000);
                page
            },
            expect: Expect::Accepted("Deep zorblax."),
        },
        HostileFile {
            name: "many-objects.pdf",
            what: "a PDF of 70,000 objects",
            bytes: pdf_page(
                stream_object("", b"BT /F1 12 Tf 72 720 Td (Many zorblax.) Tj ET"),
                (0..70_000).map(|i| format!("<< /N {i} >>").into_bytes()).collect(),
                false,
            ),
            expect: Expect::Accepted("Many zorblax."),
        },
        HostileFile {
            name: "broken-xref.pdf",
            what: "a PDF whose cross-reference table points nowhere",
            bytes: pdf_page(stream_object("", b"BT /F1 12 Tf 72 720 Td (Broken zorblax.) Tj ET"), Vec::new(), true),
            expect: Expect::Refused(422, "holds no text"),
        },
        HostileFile {
            name: "cycle.pdf",
            what: "a PDF whose page tree contains itself",
            bytes: pdf_of(
                &[
                    b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
                    b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>".to_vec(),
                    b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>".to_vec(),
                ],
                false,
            ),
            expect: Expect::Refused(422, "cycle.pdf"),
        },
        HostileFile {
            name: "inflating.pdf",
            what: "a PDF whose page stream inflates to 400 MB",
            bytes: pdf_page(
                stream_object(
                    "/Filter /FlateDecode",
                    &deflate(|out| {
                        out.write_all(b"BT /F1 12 Tf 72 720 Td ").unwrap();
                        repeat(out, b"(zorblax zorblax zorblax) Tj ", (400 << 20) / 29);
                        out.write_all(b"ET").unwrap();
                    }),
                ),
                Vec::new(),
                false,
            ),
            expect: Expect::Refused(413, "inflating.pdf"),
        },
        HostileFile {
            name: "combining.txt",
            what: "one letter under 1.5 million combining accents, and bidi and zero-width marks",
            bytes: {
                let mut text = "zorblax a".to_string();
                text.push_str(&"\u{301}".repeat(1_500_000));
                text.push_str(&"\u{202e}\u{200d}\u{2066}".repeat(50_000));
                text.into_bytes()
            },
            expect: Expect::Accepted("zorblax"),
        },
        HostileFile {
            name: "not-utf8.txt",
            what: "text that is not UTF-8",
            bytes: b"zorblax \xff\xfe\xfd".to_vec(),
            expect: Expect::Refused(422, "not UTF-8"),
        },
    ]
}

/// A one-page PDF of about `bytes` bytes whose page shows `text`, a line per text line: legitimate,
/// and slow to read (pdf-extract places every glyph).
pub fn prose_pdf(text: &str, bytes: usize) -> Vec<u8> {
    let mut content = b"BT /F1 10 Tf 72 720 Td 12 TL ".to_vec();
    for line in text.lines() {
        if content.len() > bytes.saturating_sub(4096) {
            break;
        }
        content.extend_from_slice(format!("({}) Tj T*\n", line.replace(['(', ')', '\\'], " ")).as_bytes());
    }
    content.extend_from_slice(b"ET");
    pdf_page(stream_object("", &content), Vec::new(), false)
}
