//! The kernel's BTF, read with `btfparse` (Apache-2.0, maintained, builds on
//! rustc 1.95): it resolves member paths through anonymous structs and
//! unions (`mm_struct`'s fields sit in one) and array indices (`subsys[4]`).
//! aya-obj's own BTF parser, already linked through aya, keeps its type and
//! member accessors crate-private; btf-rs is LGPL, which does not fit this
//! project's MIT/Apache licence.

use btfparse::{Readable, TypeInformation, TypeVariant};

/// `&[u8]` as btfparse's input.
struct Bytes<'a>(&'a [u8]);

impl Readable for Bytes<'_> {
    fn read(&self, offset: u64, buffer: &mut [u8]) -> btfparse::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start.checked_add(buffer.len()).and_then(|end| self.0.get(start..end)) {
            Some(src) => {
                buffer.copy_from_slice(src);
                Ok(())
            }
            None => Err(btfparse::Error::new(btfparse::ErrorKind::EOF, "read past the end of the BTF data")),
        }
    }
}

/// Parsed kernel BTF.
pub struct Btf(pub(super) TypeInformation, std::sync::OnceLock<std::collections::HashMap<String, u32>>);

impl Btf {
    pub fn parse(bytes: &[u8]) -> Result<Btf, String> {
        TypeInformation::new(&Bytes(bytes))
            .map(|t| Btf(t, Default::default()))
            .map_err(|e| e.message().to_owned())
    }

    /// A named struct's type id. `id_of` keeps the last type of a name; the
    /// kernel's BTF can also hold a forward declaration of the same name.
    pub(super) fn struct_id(&self, name: &str) -> Result<u32, String> {
        let is_struct = |tid: u32| matches!(self.0.from_id(tid), Some(TypeVariant::Struct(_)));
        if let Some(tid) = self.0.id_of(name).filter(|t| is_struct(*t)) {
            return Ok(tid);
        }
        self.0
            .get()
            .iter()
            .find_map(|(tid, t)| match t {
                TypeVariant::Struct(s) if s.name().as_deref() == Some(name) => Some(*tid),
                _ => None,
            })
            .ok_or_else(|| format!("no struct {name} in BTF"))
    }

    /// Byte offset of `path` in struct `ty`, and the member's type id.
    pub(super) fn member(&self, ty: &str, path: &str) -> Result<(u32, u32), String> {
        let tid = self.struct_id(ty)?;
        match self.0.offset_of(tid, path) {
            Ok((member_tid, btfparse::Offset::ByteOffset(offset))) => Ok((member_tid, offset)),
            Ok((_, btfparse::Offset::BitOffsetAndSize(..))) => Err(format!("{ty}.{path} is a bitfield")),
            Err(e) => Err(format!("{ty}.{path}: {}", e.message())),
        }
    }

    /// Byte offset of `ty.path`, checked to be `size` bytes wide: a member
    /// whose size changed is a shape this recorder does not know.
    pub(super) fn offset(&self, ty: &str, path: &str, size: usize) -> Result<u32, String> {
        let (member_tid, offset) = self.member(ty, path)?;
        let got = self.0.size_of(member_tid).map_err(|e| format!("{ty}.{path}: {}", e.message()))?;
        if got != size {
            return Err(format!("{ty}.{path} is {got} bytes, expected {size}"));
        }
        Ok(offset)
    }

    /// Strips typedefs and qualifiers.
    pub(super) fn resolve(&self, mut tid: u32) -> Option<TypeVariant> {
        for _ in 0..32 {
            match self.0.from_id(tid)? {
                TypeVariant::Typedef(t) => tid = *t.tid(),
                TypeVariant::Const(t) => tid = *t.tid(),
                TypeVariant::Volatile(t) => tid = *t.tid(),
                TypeVariant::Restrict(t) => tid = *t.tid(),
                TypeVariant::TypeTag(t) => tid = *t.tid(),
                other => return Some(other),
            }
        }
        None
    }

    pub(super) fn name_of(&self, tid: u32) -> Option<String> {
        match self.resolve(tid)? {
            TypeVariant::Struct(s) => s.name().clone(),
            _ => None,
        }
    }

    /// Value of an enumerator, searched in every enum (the MM counters live
    /// in an anonymous one).
    pub(super) fn enumerator(&self, name: &str) -> Option<u32> {
        // Built once: the plan asks for dozens, each a scan of every type.
        let all = self.1.get_or_init(|| {
            let mut all = std::collections::HashMap::new();
            for t in self.0.get().values() {
                if let TypeVariant::Enum(e) = t {
                    for v in e.named_value_list() {
                        let value = match v.value {
                            btfparse::Integer32Value::Signed(x) => x as u32,
                            btfparse::Integer32Value::Unsigned(x) => x,
                        };
                        all.entry(v.name.clone()).or_insert(value);
                    }
                }
            }
            all
        });
        all.get(name).copied()
    }

    /// The type of member `ty.path` with typedefs stripped, and its offset.
    pub(super) fn member_type(&self, ty: &str, path: &str) -> Result<(TypeVariant, u32), String> {
        let (tid, offset) = self.member(ty, path)?;
        let variant = self.resolve(tid).ok_or_else(|| format!("{ty}.{path} has no type"))?;
        Ok((variant, offset))
    }

    /// The element count of array member `ty.path`.
    pub(super) fn array_len(&self, ty: &str, path: &str) -> Result<u32, String> {
        match self.member_type(ty, path)? {
            (TypeVariant::Array(a), _) => Ok(*a.element_count()),
            _ => Err(format!("{ty}.{path} is not an array")),
        }
    }

    /// The size in bytes of member `ty.path`.
    pub(super) fn member_size(&self, ty: &str, path: &str) -> Result<usize, String> {
        let (tid, _) = self.member(ty, path)?;
        self.0.size_of(tid).map_err(|e| format!("{ty}.{path}: {}", e.message()))
    }

    /// Whether `btf_trace_mark_victim` (the raw tracepoint's BTF prototype,
    /// include/linux/tracepoint.h `btf_trace_##name`: `void *` then the
    /// TP_PROTO arguments) takes the victim's `struct task_struct *` first.
    pub(super) fn mark_victim_takes_task(&self) -> Result<(), String> {
        let tid = self
            .0
            .id_of("btf_trace_mark_victim")
            .ok_or("no btf_trace_mark_victim in BTF (kernel without the oom tracepoints?)")?;
        let Some(TypeVariant::Ptr(ptr)) = self.resolve(tid) else {
            return Err("btf_trace_mark_victim is not a function pointer".into());
        };
        let Some(TypeVariant::FuncProto(proto)) = self.resolve(*ptr.tid()) else {
            return Err("btf_trace_mark_victim is not a function pointer".into());
        };
        let first = proto.parameter_list().get(1).ok_or("mark_victim has no arguments")?;
        match self.resolve(first.tid()) {
            Some(TypeVariant::Ptr(p)) if self.name_of(*p.tid()).as_deref() == Some("task_struct") => Ok(()),
            // Before 72ba14deb40a (mainline 6.9, backported to 6.1.y/5.15.y
            // and older stable lines in 2025): TP_PROTO(int pid).
            _ => {
                Err("mark_victim's raw tracepoint passes a pid, not the task (kernel before 72ba14deb40a)"
                    .into())
            }
        }
    }
}

impl Btf {
    /// Size in bytes of struct `name`.
    pub(super) fn struct_size(&self, name: &str) -> Result<usize, String> {
        let tid = self.struct_id(name)?;
        self.0.size_of(tid).map_err(|e| e.message().to_owned())
    }
}
