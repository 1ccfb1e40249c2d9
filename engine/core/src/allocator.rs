//! PlatformAllocator: where frame memory comes from.
//!
//! * `heap`: plain process memory (8-byte aligned).
//! * `memfd`: `memfd_create` + `mmap`, size sealed; the fd can be exported
//!   (sent to another process, imported by a GPU driver).
//! * `dmabuf`: a real DMA-BUF from the Linux dma-heap `/dev/dma_heap/system`, or
//!   from `/dev/udmabuf` wrapping a sealed memfd.
//! * `auto`: dmabuf where a node exists, else memfd, and it says which.

use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::fmt;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Path of the system dma-heap node.
pub const DMA_HEAP_SYSTEM: &str = "/dev/dma_heap/system";
/// Path of the udmabuf node.
pub const UDMABUF: &str = "/dev/udmabuf";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AllocatorKind {
    Heap,
    Memfd,
    Dmabuf,
    #[default]
    Auto,
}

impl AllocatorKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "heap" => Some(Self::Heap),
            "memfd" => Some(Self::Memfd),
            "dmabuf" => Some(Self::Dmabuf),
            "auto" => Some(Self::Auto),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Heap => "heap",
            Self::Memfd => "memfd",
            Self::Dmabuf => "dmabuf",
            Self::Auto => "auto",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AllocError {
    #[error("cannot allocate a zero-byte buffer")]
    ZeroSize,
    #[error("{call} failed for a {bytes}-byte buffer: {source}")]
    Os {
        call: &'static str,
        bytes: usize,
        source: std::io::Error,
    },
    #[error("no dmabuf node: neither {DMA_HEAP_SYSTEM} nor {UDMABUF} exists on this machine")]
    NoDmabufNode,
    #[error("dmabuf node {node}: {source}")]
    Node {
        node: &'static str,
        source: std::io::Error,
    },
}

fn os_err(call: &'static str, bytes: usize) -> AllocError {
    AllocError::Os {
        call,
        bytes,
        source: std::io::Error::last_os_error(),
    }
}

/// A shared mapping of a file descriptor (memfd or dmabuf).
pub struct MappedRegion {
    ptr: *mut u8,
    len: usize,
    fd: OwnedFd,
}

// SAFETY: within this process the mapping is reached only through this
// value, with `&self`/`&mut self`, so Rust's borrow rules serialise access
// like a Vec. The one way to share it outside is `Memory::export_fd`, which
// is `unsafe` and whose caller promises that no access through the exported
// descriptor overlaps a borrow of these bytes.
unsafe impl Send for MappedRegion {}
// SAFETY: see above; shared access is read-only.
unsafe impl Sync for MappedRegion {}

impl MappedRegion {
    fn map(fd: OwnedFd, len: usize) -> Result<Self, AllocError> {
        // SAFETY: fd is a valid descriptor of at least `len` bytes; we ask for a
        // fresh shared mapping and check the result.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(os_err("mmap", len));
        }
        Ok(MappedRegion {
            ptr: ptr.cast(),
            len,
            fd,
        })
    }
}

impl Drop for MappedRegion {
    fn drop(&mut self) {
        // SAFETY: ptr/len came from a successful mmap and are unmapped once.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

/// The bytes behind a buffer.
pub enum Memory {
    /// Heap memory kept in u64 words so 16-bit views are always aligned.
    Heap { words: Vec<u64>, len: usize },
    Mapped {
        region: MappedRegion,
        kind: AllocatorKind,
    },
}

impl fmt::Debug for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Memory({}, {} bytes)", self.kind().name(), self.len())
    }
}

impl Memory {
    pub fn len(&self) -> usize {
        match self {
            Memory::Heap { len, .. } => *len,
            Memory::Mapped { region, .. } => region.len,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn kind(&self) -> AllocatorKind {
        match self {
            Memory::Heap { .. } => AllocatorKind::Heap,
            Memory::Mapped { kind, .. } => *kind,
        }
    }
    pub fn bytes(&self) -> &[u8] {
        match self {
            Memory::Heap { words, len } => &bytemuck::cast_slice(words)[..*len],
            // SAFETY: the region is mapped for `len` bytes while `self` lives.
            Memory::Mapped { region, .. } => unsafe {
                std::slice::from_raw_parts(region.ptr, region.len)
            },
        }
    }
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            Memory::Heap { words, len } => &mut bytemuck::cast_slice_mut(words)[..*len],
            // SAFETY: as above, and `&mut self` makes the access exclusive.
            Memory::Mapped { region, .. } => unsafe {
                std::slice::from_raw_parts_mut(region.ptr, region.len)
            },
        }
    }
    /// The buffer as 16-bit words (the length rounded down).
    pub fn u16s(&self) -> &[u16] {
        let b = self.bytes();
        bytemuck::cast_slice(&b[..b.len() & !1])
    }
    pub fn u16s_mut(&mut self) -> &mut [u16] {
        let b = self.bytes_mut();
        let n = b.len() & !1;
        bytemuck::cast_slice_mut(&mut b[..n])
    }
    /// The file descriptor behind the memory, where there is one.
    pub fn raw_fd(&self) -> Option<RawFd> {
        match self {
            Memory::Heap { .. } => None,
            Memory::Mapped { region, .. } => Some(region.fd.as_raw_fd()),
        }
    }
    /// Map memory that came from elsewhere (a DMA-BUF a camera exported):
    /// `len` bytes of `fd`, shared, read and write. The mapping and the
    /// descriptor live as long as the value.
    ///
    /// # Safety
    /// Whoever else holds this memory (the driver that exported it) must not
    /// write it while the bytes are borrowed: a V4L2 capture buffer is
    /// written only while it is queued, so borrow it between dequeue and the
    /// next queue.
    pub unsafe fn map_foreign(
        fd: OwnedFd,
        len: usize,
        kind: AllocatorKind,
    ) -> Result<Memory, AllocError> {
        if len == 0 {
            return Err(AllocError::ZeroSize);
        }
        Ok(Memory::Mapped {
            region: MappedRegion::map(fd, len)?,
            kind,
        })
    }
    /// A new descriptor for the same memory, to hand to another process or
    /// API (a V4L2 `DMABUF` queue, a compositor).
    ///
    /// # Safety
    /// Whoever gets the descriptor can write the bytes this value lends out
    /// as `&[u8]`/`&mut [u8]`. The caller must make sure no access through
    /// it (or through a mapping of it) overlaps a borrow of [`Memory::bytes`]
    /// or [`Memory::bytes_mut`]: hand the buffer over, and borrow it again
    /// only once the other side has given it back (a V4L2 dequeue, a fence).
    pub unsafe fn export_fd(&self) -> Option<std::io::Result<OwnedFd>> {
        match self {
            Memory::Heap { .. } => None,
            Memory::Mapped { region, .. } => Some(region.fd.try_clone()),
        }
    }
}

/// Where frame memory comes from.
pub trait PlatformAllocator: Send + Sync {
    fn kind(&self) -> AllocatorKind;
    /// A human description, e.g. `memfd` or `dmabuf (/dev/dma_heap/system)`.
    fn describe(&self) -> String;
    fn allocate(&self, bytes: usize, label: &str) -> Result<Memory, AllocError>;
}

#[derive(Debug, Default)]
pub struct HeapAllocator;

impl PlatformAllocator for HeapAllocator {
    fn kind(&self) -> AllocatorKind {
        AllocatorKind::Heap
    }
    fn describe(&self) -> String {
        "heap".into()
    }
    fn allocate(&self, bytes: usize, _label: &str) -> Result<Memory, AllocError> {
        if bytes == 0 {
            return Err(AllocError::ZeroSize);
        }
        Ok(Memory::Heap {
            words: vec![0u64; bytes.div_ceil(8)],
            len: bytes,
        })
    }
}

#[derive(Debug, Default)]
pub struct MemfdAllocator;

/// Create a sealed memfd of `bytes` bytes.
pub fn sealed_memfd(bytes: usize, label: &str) -> Result<OwnedFd, AllocError> {
    if bytes == 0 {
        return Err(AllocError::ZeroSize);
    }
    let name = CString::new(label.replace('\0', "_")).unwrap_or_default();
    // SAFETY: plain syscalls on a descriptor we own; every result is checked.
    unsafe {
        let fd = libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING);
        if fd < 0 {
            return Err(os_err("memfd_create", bytes));
        }
        let fd = OwnedFd::from_raw_fd(fd);
        if libc::ftruncate(fd.as_raw_fd(), bytes as libc::off_t) != 0 {
            return Err(os_err("ftruncate", bytes));
        }
        let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        if libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) != 0 {
            return Err(os_err("fcntl(F_ADD_SEALS)", bytes));
        }
        Ok(fd)
    }
}

/// The seals on a memfd (for tests and diagnostics).
pub fn memfd_seals(fd: RawFd) -> std::io::Result<i32> {
    // SAFETY: F_GET_SEALS only reads the descriptor's flags.
    let r = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl PlatformAllocator for MemfdAllocator {
    fn kind(&self) -> AllocatorKind {
        AllocatorKind::Memfd
    }
    fn describe(&self) -> String {
        "memfd".into()
    }
    fn allocate(&self, bytes: usize, label: &str) -> Result<Memory, AllocError> {
        let fd = sealed_memfd(bytes, label)?;
        Ok(Memory::Mapped {
            region: MappedRegion::map(fd, bytes)?,
            kind: AllocatorKind::Memfd,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmabufNode {
    DmaHeap,
    Udmabuf,
}

#[derive(Debug)]
pub struct DmabufAllocator {
    node: DmabufNode,
    dev: OwnedFd,
}

#[repr(C)]
struct DmaHeapAllocationData {
    len: u64,
    fd: u32,
    fd_flags: u32,
    heap_flags: u64,
}

#[repr(C)]
struct UdmabufCreate {
    memfd: u32,
    flags: u32,
    offset: u64,
    size: u64,
}

const DMA_HEAP_IOCTL_ALLOC: libc::c_ulong = 0xC018_4800; // _IOWR('H', 0, 24 bytes)
const UDMABUF_CREATE: libc::c_ulong = 0x4018_7542; // _IOW('u', 0x42, 24 bytes)

fn open_node(path: &'static str) -> Result<OwnedFd, AllocError> {
    let c = CString::new(path).unwrap_or_default();
    // SAFETY: open(2) with a valid C string; the result is checked.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(AllocError::Node {
            node: path,
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: fd is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl DmabufAllocator {
    /// Open the dma-heap, else udmabuf. Fails naming the nodes when neither exists.
    pub fn open() -> Result<Self, AllocError> {
        if Path::new(DMA_HEAP_SYSTEM).exists() {
            return Ok(DmabufAllocator {
                node: DmabufNode::DmaHeap,
                dev: open_node(DMA_HEAP_SYSTEM)?,
            });
        }
        if Path::new(UDMABUF).exists() {
            return Ok(DmabufAllocator {
                node: DmabufNode::Udmabuf,
                dev: open_node(UDMABUF)?,
            });
        }
        Err(AllocError::NoDmabufNode)
    }

    pub fn node(&self) -> DmabufNode {
        self.node
    }
}

impl PlatformAllocator for DmabufAllocator {
    fn kind(&self) -> AllocatorKind {
        AllocatorKind::Dmabuf
    }
    fn describe(&self) -> String {
        match self.node {
            DmabufNode::DmaHeap => format!("dmabuf ({DMA_HEAP_SYSTEM})"),
            DmabufNode::Udmabuf => format!("dmabuf ({UDMABUF})"),
        }
    }
    fn allocate(&self, bytes: usize, label: &str) -> Result<Memory, AllocError> {
        if bytes == 0 {
            return Err(AllocError::ZeroSize);
        }
        // dma-bufs are whole pages.
        let page = 4096;
        let len = bytes.div_ceil(page) * page;
        let fd = match self.node {
            DmabufNode::DmaHeap => {
                let mut data = DmaHeapAllocationData {
                    len: len as u64,
                    fd: 0,
                    fd_flags: (libc::O_RDWR | libc::O_CLOEXEC) as u32,
                    heap_flags: 0,
                };
                // SAFETY: the ioctl reads and writes exactly this struct.
                let r = unsafe {
                    libc::ioctl(self.dev.as_raw_fd(), DMA_HEAP_IOCTL_ALLOC as _, &mut data)
                };
                if r < 0 {
                    return Err(os_err("DMA_HEAP_IOCTL_ALLOC", len));
                }
                // SAFETY: the kernel returned a new descriptor we now own.
                unsafe { OwnedFd::from_raw_fd(data.fd as RawFd) }
            }
            DmabufNode::Udmabuf => {
                let memfd = sealed_memfd(len, label)?;
                let create = UdmabufCreate {
                    memfd: memfd.as_raw_fd() as u32,
                    flags: 1, // UDMABUF_FLAGS_CLOEXEC
                    offset: 0,
                    size: len as u64,
                };
                // SAFETY: the ioctl reads exactly this struct.
                let r = unsafe { libc::ioctl(self.dev.as_raw_fd(), UDMABUF_CREATE as _, &create) };
                if r < 0 {
                    return Err(os_err("UDMABUF_CREATE", len));
                }
                // SAFETY: the ioctl's return value is a new descriptor we own.
                unsafe { OwnedFd::from_raw_fd(r) }
            }
        };
        Ok(Memory::Mapped {
            region: MappedRegion::map(fd, len)?,
            kind: AllocatorKind::Dmabuf,
        })
    }
}

/// Build the allocator asked for. The second value says what `auto` fell
/// back to and why, so the caller can report it.
pub fn create_allocator(
    kind: AllocatorKind,
) -> Result<(Box<dyn PlatformAllocator>, Option<String>), AllocError> {
    match kind {
        AllocatorKind::Heap => Ok((Box::new(HeapAllocator), None)),
        AllocatorKind::Memfd => Ok((Box::new(MemfdAllocator), None)),
        AllocatorKind::Dmabuf => Ok((Box::new(DmabufAllocator::open()?), None)),
        AllocatorKind::Auto => match DmabufAllocator::open() {
            Ok(a) => Ok((Box::new(a), None)),
            Err(e) => {
                let note = format!("allocator auto: dmabuf unavailable ({e}); using memfd");
                tracing::info!("{note}");
                Ok((Box::new(MemfdAllocator), Some(note)))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether this machine has a node the dmabuf allocator can open.
    fn dmabuf_node_present() -> bool {
        [DMA_HEAP_SYSTEM, UDMABUF]
            .iter()
            .any(|p| Path::new(p).exists())
    }

    #[test]
    fn heap_is_zeroed_and_aligned() {
        for len in [1, 13, 4096, 1 << 20] {
            let mut m = HeapAllocator.allocate(len, "t").unwrap();
            assert_eq!(m.len(), len);
            assert!(m.bytes().iter().all(|&b| b == 0), "{len} bytes not zeroed");
            assert_eq!(m.bytes().as_ptr() as usize % 8, 0, "{len} bytes unaligned");
            m.bytes_mut()[len - 1] = 7;
            assert_eq!(m.bytes()[len - 1], 7);
            assert_eq!(m.u16s().len(), len / 2);
            assert!(m.raw_fd().is_none());
        }
    }

    #[test]
    fn memfd_is_zeroed_aligned_sealed_and_exportable() {
        let mut m = MemfdAllocator.allocate(10_000, "frame").unwrap();
        assert!(m.bytes().iter().all(|&b| b == 0));
        assert_eq!(m.bytes().as_ptr() as usize % 8, 0);
        m.bytes_mut()[9_999] = 42;
        // SAFETY: the other mapping below only reads, after the write above
        // and with no borrow of `m` alive meanwhile.
        let fd = unsafe { m.export_fd() }.unwrap().unwrap();
        let seals = memfd_seals(fd.as_raw_fd()).unwrap();
        assert_ne!(seals & libc::F_SEAL_SHRINK, 0);
        assert_ne!(seals & libc::F_SEAL_GROW, 0);
        // The exported descriptor sees the same bytes.
        let other = MappedRegion::map(fd, 10_000).unwrap();
        let view = unsafe { std::slice::from_raw_parts(other.ptr, other.len) };
        assert_eq!(view[9_999], 42);
        // Growing a sealed memfd is refused.
        let r = unsafe { libc::ftruncate(m.raw_fd().unwrap(), 20_000) };
        assert_eq!(r, -1);
    }

    /// What the machine has decides the one right answer.
    #[test]
    fn dmabuf_works_where_a_node_exists_and_names_the_nodes_where_not() {
        let r = create_allocator(AllocatorKind::Dmabuf);
        if dmabuf_node_present() {
            let (a, _) = r.unwrap();
            assert_eq!(a.kind(), AllocatorKind::Dmabuf);
            let mut m = a.allocate(5000, "dma").unwrap();
            assert!(m.bytes().iter().all(|&b| b == 0));
            m.bytes_mut()[0] = 1;
            assert!(m.raw_fd().is_some());
        } else {
            let msg = r.err().expect("dmabuf without a node").to_string();
            assert!(
                msg.contains(DMA_HEAP_SYSTEM) && msg.contains(UDMABUF),
                "{msg}"
            );
        }
    }

    #[test]
    fn auto_falls_back_and_says_so() {
        let (a, note) = create_allocator(AllocatorKind::Auto).unwrap();
        if dmabuf_node_present() {
            assert_eq!((a.kind(), note), (AllocatorKind::Dmabuf, None));
        } else {
            assert_eq!(a.kind(), AllocatorKind::Memfd);
            let note = note.expect("auto says why it fell back");
            assert!(
                note.contains("dmabuf unavailable") && note.contains("using memfd"),
                "{note}"
            );
            assert!(note.contains(DMA_HEAP_SYSTEM), "{note}");
        }
        let m = a.allocate(64, "x").unwrap();
        assert_eq!(m.len(), 64);
        assert!(m.raw_fd().is_some());
    }

    #[test]
    fn zero_size_is_an_error() {
        for a in [
            &HeapAllocator as &dyn PlatformAllocator,
            &MemfdAllocator as &dyn PlatformAllocator,
        ] {
            assert!(matches!(a.allocate(0, "z"), Err(AllocError::ZeroSize)));
        }
    }
}
