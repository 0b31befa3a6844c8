//! wasm-slim: a build step of gemini-router's module (`make build`).
//!
//! The proxy-wasm SDK exports every callback of the ABI from every module
//! built with it: gRPC replies, network data, shared queues, foreign
//! functions. An HTTP filter that makes no gRPC call and opens no queue is
//! never called on them, yet Envoy's V8 compiles them, and the code only
//! they reach, when it loads the module; a module's compiled size is most
//! of what it adds to Envoy's idle memory.
//!
//! `wasm-slim IN OUT EXPORT...` writes IN to OUT without the named function
//! exports, and with the body of every function that is then unreachable
//! replaced by `unreachable`. Reachable: from the remaining exports, the
//! start function, the element segments (the table behind every indirect
//! call) and global initialisers, through `call`, `return_call` and
//! `ref.func`. Everything else is copied byte for byte: no function is
//! renumbered, and a live function's code is the compiler's own. The run is
//! deterministic, and running it on its own output changes nothing.
//!
//! It refuses, and writes nothing, when IN does not validate, names an
//! export IN does not have, or OUT would not validate.

use std::collections::HashSet;
use std::fmt;
use std::process::ExitCode;

use wasmparser::{
    BinaryReader, BinaryReaderError, ConstExpr, ElementItems, ExternalKind, Operator, Parser,
    Payload, TypeRef, Validator, WasmFeatures,
};

/// Why the module was not written.
#[derive(Debug)]
enum SlimError {
    /// Reading or writing a file.
    Io(String, std::io::Error),
    /// The input or the output is not a valid module.
    Invalid(&'static str, BinaryReaderError),
    /// An export to drop is not a function export of the input.
    NoSuchExport(String),
    /// The command line.
    Usage,
}

impl fmt::Display for SlimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlimError::Io(path, e) => write!(f, "{path}: {e}"),
            SlimError::Invalid(which, e) => write!(f, "the {which} module is not valid: {e}"),
            SlimError::NoSuchExport(name) => {
                write!(f, "the module has no function export {name:?}")
            }
            SlimError::Usage => f.write_str("usage: wasm-slim IN OUT EXPORT..."),
        }
    }
}

impl From<BinaryReaderError> for SlimError {
    fn from(e: BinaryReaderError) -> Self {
        SlimError::Invalid("input", e)
    }
}

/// The body of a function no one can call: no locals, `unreachable`, `end`.
const DEAD_BODY: [u8; 3] = [0x00, 0x00, 0x0b];

/// The section ids rewritten.
const EXPORT_SECTION: u8 = 7;
const CODE_SECTION: u8 = 10;

fn validate(which: &'static str, bytes: &[u8]) -> Result<(), SlimError> {
    let features = WasmFeatures::WASM2 | WasmFeatures::SIMD | WasmFeatures::SATURATING_FLOAT_TO_INT;
    Validator::new_with_features(features)
        .validate_all(bytes)
        .map(|_| ())
        .map_err(|e| SlimError::Invalid(which, e))
}

/// Appends `n` as unsigned LEB128.
fn leb(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Appends a section: id, size, contents.
fn section(out: &mut Vec<u8>, id: u8, contents: &[u8]) {
    out.push(id);
    leb(out, contents.len());
    out.extend_from_slice(contents);
}

/// Adds the functions `expr` refers to (`ref.func`) to `into`.
fn const_refs(expr: &ConstExpr<'_>, into: &mut Vec<u32>) -> Result<(), SlimError> {
    for op in expr.get_operators_reader() {
        if let Operator::RefFunc { function_index } = op? {
            into.push(function_index);
        }
    }
    Ok(())
}

/// An export as written back: name, kind byte, index.
type Export<'a> = (&'a str, u8, u32);

/// A defined function: its body (without the size prefix) and its callees.
type Body<'a> = (&'a [u8], Vec<u32>);

fn slim(input: &[u8], drop: &[&str]) -> Result<Vec<u8>, SlimError> {
    validate("input", input)?;
    let mut imported = 0u32;
    let mut roots: Vec<u32> = Vec::new();
    let mut dropped: HashSet<&str> = HashSet::new();
    let mut exports: Vec<Export<'_>> = Vec::new();
    let mut bodies: Vec<Body<'_>> = Vec::new();
    for payload in Parser::new(0).parse_all(input) {
        match payload? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    if matches!(import?.ty, TypeRef::Func(_) | TypeRef::FuncExact(_)) {
                        imported += 1;
                    }
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export?;
                    let function =
                        matches!(export.kind, ExternalKind::Func | ExternalKind::FuncExact);
                    if function && drop.contains(&export.name) {
                        dropped.insert(export.name);
                        continue;
                    }
                    if function {
                        roots.push(export.index);
                    }
                    let kind = match export.kind {
                        ExternalKind::Func | ExternalKind::FuncExact => 0,
                        ExternalKind::Table => 1,
                        ExternalKind::Memory => 2,
                        ExternalKind::Global => 3,
                        ExternalKind::Tag => 4,
                    };
                    exports.push((export.name, kind, export.index));
                }
            }
            Payload::StartSection { func, .. } => roots.push(func),
            Payload::ElementSection(reader) => {
                for element in reader {
                    match element?.items {
                        ElementItems::Functions(functions) => {
                            for f in functions {
                                roots.push(f?);
                            }
                        }
                        ElementItems::Expressions(_, exprs) => {
                            for expr in exprs {
                                const_refs(&expr?, &mut roots)?;
                            }
                        }
                    }
                }
            }
            Payload::GlobalSection(reader) => {
                for global in reader {
                    const_refs(&global?.init_expr, &mut roots)?;
                }
            }
            Payload::CodeSectionEntry(body) => {
                let mut callees = Vec::new();
                for op in body.get_operators_reader()? {
                    match op? {
                        Operator::Call { function_index }
                        | Operator::ReturnCall { function_index }
                        | Operator::RefFunc { function_index } => callees.push(function_index),
                        _ => {}
                    }
                }
                let range = body.range();
                let bytes = input
                    .get(range.start as usize..range.end as usize)
                    .unwrap_or_default();
                bodies.push((bytes, callees));
            }
            _ => {}
        }
    }
    if let Some(missing) = drop.iter().find(|name| !dropped.contains(*name)) {
        return Err(SlimError::NoSuchExport((*missing).to_owned()));
    }
    let live = reachable(&bodies, imported, roots);
    let output = rewrite(input, &exports, &bodies, &live)?;
    validate("output", &output)?;
    Ok(output)
}

/// Which defined functions `roots` reach (imports are not ours to empty).
fn reachable(bodies: &[Body<'_>], imported: u32, roots: Vec<u32>) -> Vec<bool> {
    let mut live = vec![false; bodies.len()];
    let mut stack = roots;
    while let Some(f) = stack.pop() {
        let Some(index) = f.checked_sub(imported).map(|i| i as usize) else {
            continue;
        };
        if let (Some(seen), Some((_, callees))) = (live.get_mut(index), bodies.get(index)) {
            if !*seen {
                *seen = true;
                stack.extend_from_slice(callees);
            }
        }
    }
    live
}

/// `input` with its export section made of `exports` and its code section
/// of `bodies`, the dead ones emptied; every other section as it was.
fn rewrite(
    input: &[u8],
    exports: &[Export<'_>],
    bodies: &[Body<'_>],
    live: &[bool],
) -> Result<Vec<u8>, SlimError> {
    let mut out = input.get(..8).unwrap_or_default().to_vec();
    let mut at = 8;
    while at < input.len() {
        let id = input[at];
        let mut reader = BinaryReader::new(input.get(at + 1..).unwrap_or_default(), at as u64 + 1);
        let size = reader.read_var_u32()? as usize;
        let start = at + 1 + reader.current_position();
        let end = start + size;
        match id {
            EXPORT_SECTION => {
                let mut contents = Vec::new();
                leb(&mut contents, exports.len());
                for (name, kind, index) in exports {
                    leb(&mut contents, name.len());
                    contents.extend_from_slice(name.as_bytes());
                    contents.push(*kind);
                    leb(&mut contents, *index as usize);
                }
                section(&mut out, EXPORT_SECTION, &contents);
            }
            CODE_SECTION => {
                let mut contents = Vec::new();
                leb(&mut contents, bodies.len());
                for ((body, _), live) in bodies.iter().zip(live) {
                    let body: &[u8] = if *live { body } else { &DEAD_BODY };
                    leb(&mut contents, body.len());
                    contents.extend_from_slice(body);
                }
                section(&mut out, CODE_SECTION, &contents);
            }
            _ => out.extend_from_slice(input.get(at..end).unwrap_or_default()),
        }
        at = end;
    }
    Ok(out)
}

fn run() -> Result<(), SlimError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input_path, output_path, drop @ ..] = args.as_slice() else {
        return Err(SlimError::Usage);
    };
    let input = std::fs::read(input_path).map_err(|e| SlimError::Io(input_path.clone(), e))?;
    let drop: Vec<&str> = drop.iter().map(String::as_str).collect();
    let output = slim(&input, &drop)?;
    std::fs::write(output_path, &output).map_err(|e| SlimError::Io(output_path.clone(), e))?;
    eprintln!(
        "wasm-slim: {output_path}: {} -> {} bytes",
        input.len(),
        output.len()
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wasm-slim: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module of five `() -> ()` functions: `a` (exported) calls 1;
    /// `c` (exported) calls 3; 4 is only in the table; one imported
    /// function comes first, so defined function `i` has index `i + 1`.
    fn module() -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        section(&mut m, 1, &[1, 0x60, 0, 0]);
        section(&mut m, 2, &[1, 1, b'e', 1, b'f', 0, 0]);
        section(&mut m, 3, &[5, 0, 0, 0, 0, 0]);
        section(&mut m, 4, &[1, 0x70, 0, 1]);
        section(&mut m, 7, &[2, 1, b'a', 0, 1, 1, b'c', 0, 3]);
        section(&mut m, 9, &[1, 0, 0x41, 0, 0x0b, 1, 5]);
        let bodies: [&[u8]; 5] = [
            &[0, 0x10, 2, 0x0b], // a: call 2
            &[0, 0x01, 0x0b],    // nop
            &[0, 0x10, 4, 0x0b], // c: call 4
            &[0, 0x01, 0x01, 0x0b],
            &[0, 0x10, 0, 0x0b], // in the table: calls the import
        ];
        let mut code = vec![5];
        for body in bodies {
            leb(&mut code, body.len());
            code.extend_from_slice(body);
        }
        section(&mut m, 10, &code);
        m
    }

    /// The export names and the bodies of `bytes`.
    fn read(bytes: &[u8]) -> (Vec<String>, Vec<Vec<u8>>) {
        let (mut names, mut bodies) = (Vec::new(), Vec::new());
        for payload in Parser::new(0).parse_all(bytes) {
            match payload.unwrap() {
                Payload::ExportSection(r) => {
                    names.extend(r.into_iter().map(|e| e.unwrap().name.to_owned()));
                }
                Payload::CodeSectionEntry(b) => {
                    let r = b.range();
                    bodies.push(bytes[r.start as usize..r.end as usize].to_vec());
                }
                _ => {}
            }
        }
        (names, bodies)
    }

    #[test]
    fn a_dropped_export_and_what_only_it_reaches_are_emptied() {
        let input = module();
        let out = slim(&input, &["c"]).unwrap();
        let (names, bodies) = read(&out);
        assert_eq!(names, ["a"]);
        let (_, before) = read(&input);
        // a and its callee live; c and its callee emptied; the table's
        // function lives.
        assert_eq!(bodies[0], before[0]);
        assert_eq!(bodies[1], before[1]);
        assert_eq!(bodies[2], DEAD_BODY);
        assert_eq!(bodies[3], DEAD_BODY);
        assert_eq!(bodies[4], before[4]);
    }

    #[test]
    fn nothing_dropped_changes_nothing_and_a_second_run_neither() {
        let input = module();
        assert_eq!(slim(&input, &[]).unwrap(), input);
        let once = slim(&input, &["c"]).unwrap();
        assert_eq!(slim(&once, &[]).unwrap(), once);
    }

    #[test]
    fn refusals() {
        let input = module();
        assert!(matches!(slim(&input, &["zz"]), Err(SlimError::NoSuchExport(n)) if n == "zz"));
        assert!(matches!(
            slim(&input[..input.len() - 1], &[]),
            Err(SlimError::Invalid("input", _))
        ));
        assert!(matches!(
            slim(b"not wasm", &[]),
            Err(SlimError::Invalid("input", _))
        ));
    }
}
