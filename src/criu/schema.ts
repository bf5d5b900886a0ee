/**
 * Message tables for CRIU images, in a compact form of our own.
 *
 * Field numbers, types and names are facts of CRIU's published image schema (checkpoint-restore/criu,
 * `images/*.proto`, v4.2); the names are the ones crit prints, so decoded objects compare directly with
 * `crit show` output. One message is a `;`-separated list of fields:
 *
 *     name=number type[!|*] [option ...]
 *
 * `!` marks a proto2 `required` field, `*` a repeated one. Types: `u32 u64 i32 i64 s32 s64 bool str bytes
 * fx32 fx64 sfx32 sfx64 float double`, or the name of a message or enum of this table. Options say how
 * crit's `--pretty` shows the field: `hex`, `ip` (address), `dev`, `odev`, `flags:<table>`, `dict:<table>`,
 * `conv:<name>`.
 *
 * Only the x86_64 and aarch64 register sets are described; other architectures' thread info is kept as
 * unknown fields.
 *
 * @module
 */
import {
  wireTypeOf, type EnumDef, type FieldDef, type MessageDef, type PrettyOptions, type ScalarType,
} from './protobuf.js';

const ENUMS: Record<string, string> = {
  seccomp_mode: 'disabled=0 strict=1 filter=2',
  march: 'UNKNOWN=0 X86_64=1 ARM=2 AARCH64=3 PPC64=4 S390=5 MIPS=6 LOONGARCH64=7 RISCV64=8',
  user_x86_regs_mode: 'NATIVE=1 COMPAT=2',
  lsmtype: 'NO_LSM=0 SELINUX=1 APPARMOR=2',
  fd_types:
    'UND=0 REG=1 PIPE=2 FIFO=3 INETSK=4 UNIXSK=5 EVENTFD=6 EVENTPOLL=7 INOTIFY=8 SIGNALFD=9 PACKETSK=10 ' +
    'TTY=11 FANOTIFY=12 NETLINKSK=13 NS=14 TUNF=15 EXT=16 TIMERFD=17 MEMFD=18 BPFMAP=19 PIDFD=20 ' +
    'CTL_TTY=65534 AUTOFS_PIPE=65535',
  sk_shutdown: 'NONE=0 READ=1 WRITE=2 BOTH=3',
  mark_type: 'INODE=1 MOUNT=2',
  TtyType: 'UNKNOWN=0 PTY=1 CONSOLE=2 VT=3 CTTY=4 EXT_TTY=5 SERIAL=6',
  remap_type: 'LINKED=0 GHOST=1 PROCFS=2',
  fstype:
    'UNSUPPORTED=0 PROC=1 SYSFS=2 DEVTMPFS=3 BINFMT_MISC=4 TMPFS=5 DEVPTS=6 SIMFS=7 PSTORE=8 SECURITYFS=9 ' +
    'FUSECTL=10 DEBUGFS=11 CGROUP=12 AUFS=13 MQUEUE=14 FUSE=15 AUTO=16 OVERLAYFS=17 AUTOFS=18 TRACEFS=19 CGROUP2=23',
  nd_type: 'LOOPBACK=1 VETH=2 TUN=3 EXTLINK=4 VENET=5 BRIDGE=6 MACVLAN=7 SIT=8',
  SysctlType: 'CTL_STR=5 CTL_32=6',
  cpu_vendor: 'UNKNOWN=0 INTEL=1 AMD=2',
  cpu_endianness: 'BIGENDIAN=0 LITTLEENDIAN=1',
};

const MESSAGES: Record<string, string> = {
  // --- process tree, core, ids ---------------------------------------------------------------
  pstree_entry: 'pid=1 u32!; ppid=2 u32!; pgid=3 u32!; sid=4 u32!; threads=5 u32*',
  task_kobj_ids_entry:
    'vm_id=1 u32!; files_id=2 u32!; fs_id=3 u32!; sighand_id=4 u32!; pid_ns_id=5 u32; net_ns_id=6 u32; ' +
    'ipc_ns_id=7 u32; uts_ns_id=8 u32; mnt_ns_id=9 u32; user_ns_id=10 u32; cgroup_ns_id=11 u32; time_ns_id=12 u32',
  core_entry:
    'mtype=1 march!; thread_info=2 thread_info_x86; tc=3 task_core_entry; ids=4 task_kobj_ids_entry; ' +
    'thread_core=5 thread_core_entry; ti_aarch64=8 thread_info_aarch64',
  task_core_entry:
    'task_state=1 u32! dict:gen; exit_code=2 u32!; personality=3 u32!; flags=4 u32!; blk_sigset=5 u64! hex; ' +
    'comm=6 str!; timers=7 task_timers_entry; rlimits=8 task_rlimits_entry; cg_set=9 u32; ' +
    'signals_s=10 signal_queue_entry; old_seccomp_mode=11 seccomp_mode; old_seccomp_filter=12 u32; ' +
    'loginuid=13 u32; oom_score_adj=14 i32; sigactions=15 sa_entry*; child_subreaper=18 bool; ' +
    'blk_sigset_extended=20 u64 hex; stop_signo=21 u32; membarrier_registration_mask=22 u32 hex',
  thread_core_entry:
    'futex_rla=1 u64!; futex_rla_len=2 u32!; sched_nice=3 s32; sched_policy=4 u32; sched_prio=5 u32; ' +
    'blk_sigset=6 u64; sas=7 thread_sas_entry; pdeath_sig=8 u32; signals_p=9 signal_queue_entry; ' +
    'creds=10 creds_entry; seccomp_mode=11 seccomp_mode; seccomp_filter=12 u32; comm=13 str; ' +
    'blk_sigset_extended=14 u64; rseq_entry=15 rseq_entry; cg_set=16 u32',
  thread_sas_entry: 'ss_sp=1 u64!; ss_size=2 u64!; ss_flags=3 u32!',
  task_rlimits_entry: 'rlimits=1 rlimit_entry*',
  rlimit_entry: 'cur=1 u64!; max=2 u64!',
  itimer_entry: 'isec=1 u64!; iusec=2 u64!; vsec=3 u64!; vusec=4 u64!',
  posix_timer_entry:
    'it_id=1 u32!; clock_id=2 u32!; si_signo=3 u32!; it_sigev_notify=4 u32!; sival_ptr=5 u64!; overrun=6 u32!; ' +
    'isec=7 u64!; insec=8 u64!; vsec=9 u64!; vnsec=10 u64!; notify_thread_id=11 i32',
  task_timers_entry: 'real=1 itimer_entry!; virt=2 itimer_entry!; prof=3 itimer_entry!; posix=4 posix_timer_entry*',
  sa_entry:
    'sigaction=1 u64! hex; flags=2 u64! hex; restorer=3 u64! hex; mask=4 u64! hex; compat_sigaction=5 bool; ' +
    'mask_extended=6 u64 hex',
  siginfo_entry: 'siginfo=1 bytes!',
  signal_queue_entry: 'signals=1 siginfo_entry*',
  rseq_entry: 'rseq_abi_pointer=1 u64!; rseq_abi_size=2 u32!; signature=3 u32!; rseq_cs_pointer=4 u64',
  creds_entry:
    'uid=1 u32!; gid=2 u32!; euid=3 u32!; egid=4 u32!; suid=5 u32!; sgid=6 u32!; fsuid=7 u32!; fsgid=8 u32!; ' +
    'cap_inh=9 u32*; cap_prm=10 u32*; cap_eff=11 u32*; cap_bnd=12 u32*; secbits=13 u32!; groups=14 u32*; ' +
    'lsm_profile=15 str; lsm_sockcreate=16 str; apparmor_data=17 bytes; no_new_privs=18 u32; cap_amb=19 u32*',

  // --- x86_64 registers --------------------------------------------------------------------------
  thread_info_x86:
    'clear_tid_addr=1 u64! hex; gpregs=2 user_x86_regs_entry! hex; fpregs=3 user_x86_fpregs_entry!; tls=4 user_desc_t*',
  user_x86_regs_entry:
    'r15=1 u64!; r14=2 u64!; r13=3 u64!; r12=4 u64!; bp=5 u64!; bx=6 u64!; r11=7 u64!; r10=8 u64!; r9=9 u64!; ' +
    'r8=10 u64!; ax=11 u64!; cx=12 u64!; dx=13 u64!; si=14 u64!; di=15 u64!; orig_ax=16 u64!; ip=17 u64!; ' +
    'cs=18 u64!; flags=19 u64!; sp=20 u64!; ss=21 u64!; fs_base=22 u64!; gs_base=23 u64!; ds=24 u64!; ' +
    'es=25 u64!; fs=26 u64!; gs=27 u64!; mode=28 user_x86_regs_mode',
  user_x86_fpregs_entry:
    'cwd=1 u32!; swd=2 u32!; twd=3 u32!; fop=4 u32!; rip=5 u64!; rdp=6 u64!; mxcsr=7 u32!; mxcsr_mask=8 u32!; ' +
    'st_space=9 u32*; xmm_space=10 u32*; padding=11 u32*; xsave=13 user_x86_xsave_entry',
  user_x86_xsave_entry:
    'xstate_bv=1 u64!; ymmh_space=2 u32*; bndreg_state=3 u64*; bndcsr_state=4 u64*; opmask_reg=5 u64*; ' +
    'zmm_upper=6 u64*; hi16_zmm=7 u64*; pkru=8 u32*; cet=9 user_x86_cet_entry',
  user_x86_cet_entry: 'cet=1 u64! hex; ssp=2 u64! hex',
  user_desc_t:
    'entry_number=1 u32!; base_addr=2 u32!; limit=3 u32!; seg_32bit=4 bool!; contents_h=5 bool!; ' +
    'contents_l=6 bool!; read_exec_only=7 bool!; limit_in_pages=8 bool!; seg_not_present=9 bool!; usable=10 bool!',

  // --- aarch64 registers -------------------------------------------------------------------------
  thread_info_aarch64:
    'clear_tid_addr=1 u64! hex; tls=2 u64!; gpregs=3 user_aarch64_regs_entry! hex; ' +
    'fpsimd=4 user_aarch64_fpsimd_context_entry!; pac_keys=5 pac_keys',
  user_aarch64_regs_entry: 'regs=1 u64*; sp=2 u64!; pc=3 u64!; pstate=4 u64!',
  user_aarch64_fpsimd_context_entry: 'vregs=1 u64*; fpsr=2 u32!; fpcr=3 u32!',
  pac_keys: 'pac_address_keys=6 pac_address_keys; pac_generic_keys=7 pac_generic_keys',
  pac_address_keys:
    'apiakey_lo=1 u64!; apiakey_hi=2 u64!; apibkey_lo=3 u64!; apibkey_hi=4 u64!; apdakey_lo=5 u64!; ' +
    'apdakey_hi=6 u64!; apdbkey_lo=7 u64!; apdbkey_hi=8 u64!; pac_enabled_key=9 u64!',
  pac_generic_keys: 'apgakey_lo=1 u64!; apgakey_hi=2 u64!',

  // --- inventory, stats, misc per-dump ---------------------------------------------------------
  inventory_entry:
    'img_version=1 u32!; fdinfo_per_id=2 bool; root_ids=3 task_kobj_ids_entry; ns_per_id=4 bool; ' +
    'root_cg_set=5 u32; lsmtype=6 lsmtype; dump_uptime=8 u64; pre_dump_mode=9 u32; tcp_close=10 bool; ' +
    'network_lock_method=11 u32; plugins_entry=12 plugins_entry; dump_criu_run_id=13 str; allow_uprobes=14 bool',
  plugins_entry: 'plugins=12 str*',
  stats_entry: 'dump=1 dump_stats_entry; restore=2 restore_stats_entry',
  dump_stats_entry:
    'freezing_time=1 u32!; frozen_time=2 u32!; memdump_time=3 u32!; memwrite_time=4 u32!; pages_scanned=5 u64!; ' +
    'pages_skipped_parent=6 u64!; pages_written=7 u64!; irmap_resolve=8 u32; pages_lazy=9 u64!; ' +
    'page_pipes=10 u64; page_pipe_bufs=11 u64; shpages_scanned=12 u64; shpages_skipped_parent=13 u64; ' +
    'shpages_written=14 u64',
  restore_stats_entry:
    'pages_compared=1 u64!; pages_skipped_cow=2 u64!; forking_time=3 u32!; restore_time=4 u32!; pages_restored=5 u64',
  seccomp_entry: 'seccomp_filters=1 seccomp_filter*',
  seccomp_filter: 'filter=1 bytes!; prev=2 u32; flags=3 u32',
  timens_entry: 'monotonic=1 timespec!; boottime=2 timespec!',
  timespec: 'tv_sec=1 u64!; tv_nsec=2 u64!',
  timeval: 'tv_sec=1 u64!; tv_usec=2 u64!',
  utsns_entry: 'nodename=1 str!; domainname=2 str!',
  pidns_entry: 'ext_key=1 str',
  userns_entry: 'uid_map=1 uid_gid_extent*; gid_map=2 uid_gid_extent*',
  uid_gid_extent: 'first=1 u32!; lower_first=2 u32!; count=3 u32!',
  cpuinfo_entry: 'x86_entry=1 cpuinfo_x86_entry*; ppc64_entry=2 cpuinfo_ppc64_entry*; s390_entry=3 cpuinfo_s390_entry*',
  cpuinfo_x86_entry:
    'vendor_id=1 cpu_vendor!; cpu_family=2 u32!; model=3 u32!; stepping=4 u32!; capability_ver=5 u32!; ' +
    'capability=6 u32*; model_id=7 str; xfeatures_mask=8 u64; xsave_size=9 u32; xsave_size_max=10 u32',
  cpuinfo_ppc64_entry: 'endian=1 cpu_endianness!; hwcap=2 u64*',
  cpuinfo_s390_entry: 'hwcap=2 u64*',

  // --- memory --------------------------------------------------------------------------------------
  mm_entry:
    'mm_start_code=1 u64! hex; mm_end_code=2 u64! hex; mm_start_data=3 u64! hex; mm_end_data=4 u64! hex; ' +
    'mm_start_stack=5 u64! hex; mm_start_brk=6 u64! hex; mm_brk=7 u64! hex; mm_arg_start=8 u64! hex; ' +
    'mm_arg_end=9 u64! hex; mm_env_start=10 u64! hex; mm_env_end=11 u64! hex; exe_file_id=12 u32!; ' +
    'mm_saved_auxv=13 u64*; vmas=14 vma_entry*; dumpable=15 i32; aios=16 aio_ring_entry*; thp_disabled=17 bool',
  aio_ring_entry: 'id=1 u64!; nr_req=2 u32!; ring_len=3 u32!',
  vma_entry:
    'start=1 u64! hex; end=2 u64! hex; pgoff=3 u64!; shmid=4 u64!; prot=5 u32! flags:mmap.prot; ' +
    'flags=6 u32! flags:mmap.flags; status=7 u32! flags:mmap.status; fd=8 s64!; madv=9 u64 hex; fdflags=10 u32 hex',
  pagemap_head: 'pages_id=1 u32!',
  pagemap_entry: 'vaddr=1 u64! hex; compat_nr_pages=2 u32!; in_parent=3 bool; flags=4 u32 flags:pmap.flags; nr_pages=5 u64',
  memfd_inode_entry:
    'name=1 str!; uid=2 u32!; gid=3 u32!; size=4 u64!; shmid=5 u32!; seals=6 u32! flags:seals.flags; ' +
    'inode_id=7 u64!; hugetlb_flag=8 u32; mode=9 u32',
  ipc_desc_entry: 'key=1 u32!; uid=2 u32!; gid=3 u32!; cuid=4 u32!; cgid=5 u32!; mode=6 u32!; id=7 u32!',
  ipc_shm_entry: 'desc=1 ipc_desc_entry!; size=2 u64!; in_pagemaps=3 bool; hugetlb_flag=4 u32',
  ipc_sem_entry: 'desc=1 ipc_desc_entry!; nsems=2 u32!',
  ipc_msg: 'mtype=1 u64!; msize=2 u32!',
  ipc_msg_entry: 'desc=1 ipc_desc_entry!; qbytes=2 u32!; qnum=3 u32!',
  ipc_var_entry:
    'sem_ctls=1 u32*; msg_ctlmax=2 u32!; msg_ctlmnb=3 u32!; msg_ctlmni=4 u32!; auto_msgmni=5 u32!; ' +
    'shm_ctlmax=6 u64!; shm_ctlall=7 u64!; shm_ctlmni=8 u32!; shm_rmid_forced=9 u32!; mq_queues_max=10 u32!; ' +
    'mq_msg_max=11 u32!; mq_msgsize_max=12 u32!; mq_msg_default=13 u32; mq_msgsize_default=14 u32; ' +
    'msg_next_id=15 u32; sem_next_id=16 u32; shm_next_id=17 u32',

  // --- files ---------------------------------------------------------------------------------------
  fdinfo_entry: 'id=1 u32!; flags=2 u32!; type=3 fd_types!; fd=4 u32!; xattr_security_selinux=5 str',
  file_entry:
    'type=1 fd_types!; id=2 u32!; reg=3 reg_file_entry; isk=4 inet_sk_entry; nsf=5 ns_file_entry; ' +
    'psk=6 packet_sock_entry; nlsk=7 netlink_sk_entry; efd=8 eventfd_file_entry; epfd=9 eventpoll_file_entry; ' +
    'sgfd=10 signalfd_entry; tunf=11 tunfile_entry; tfd=12 timerfd_entry; ify=13 inotify_file_entry; ' +
    'ffy=14 fanotify_file_entry; ext=15 ext_file_entry; usk=16 unix_sk_entry; fifo=17 fifo_entry; ' +
    'pipe=18 pipe_entry; tty=19 tty_file_entry; memfd=20 memfd_file_entry; bpf=21 bpfmap_file_entry; ' +
    'pidfd=22 pidfd_entry',
  fown_entry: 'uid=1 u32!; euid=2 u32!; signum=3 u32!; pid_type=4 u32!; pid=5 u32!',
  reg_file_entry:
    'id=1 u32!; flags=2 u32! flags:rfile.flags; pos=3 u64!; fown=5 fown_entry!; name=6 str!; mnt_id=7 s32; ' +
    'size=8 u64; ext=9 bool; mode=10 u32; build_id=11 u32*; checksum=12 u32; checksum_config=13 u32; ' +
    'checksum_parameter=14 u32',
  fs_entry: 'cwd_id=1 u32!; root_id=2 u32!; umask=3 u32',
  remap_file_path_entry: 'orig_id=1 u32!; remap_id=2 u32!; remap_type=3 remap_type',
  ghost_file_entry:
    'uid=1 u32!; gid=2 u32!; mode=3 u32!; dev=4 u32 dev; ino=5 u64; rdev=6 u32 dev odev; atim=7 timeval; ' +
    'mtim=8 timeval; chunks=9 bool; size=10 u64; symlnk_target=11 str',
  ghost_chunk_entry: 'len=1 u64!; off=2 u64!',
  file_lock_entry: 'flag=1 u32!; type=2 u32!; pid=3 i32!; fd=4 i32!; start=5 i64!; len=6 i64!',
  pipe_entry: 'id=1 u32!; pipe_id=2 u32!; flags=3 u32! hex; fown=4 fown_entry!',
  pipe_data_entry: 'pipe_id=1 u32!; bytes=2 u32!; size=3 u32',
  fifo_entry: 'id=1 u32!; pipe_id=2 u32!; regf_id=3 u32',
  eventfd_file_entry: 'id=1 u32!; flags=2 u32!; fown=3 fown_entry!; counter=4 u64!',
  eventpoll_tfd_entry: 'id=1 u32!; tfd=2 u32!; events=3 u32!; data=4 u64!; dev=5 u32; inode=6 u64; pos=7 u64',
  eventpoll_file_entry: 'id=1 u32!; flags=2 u32!; fown=3 fown_entry!; tfd=4 eventpoll_tfd_entry*',
  signalfd_entry: 'id=1 u32!; flags=2 u32! hex; fown=3 fown_entry!; sigmask=4 u64! hex',
  timerfd_entry:
    'id=1 u32!; flags=2 u32! hex; fown=3 fown_entry!; clockid=4 u32!; ticks=5 u64!; settime_flags=6 u32! hex; ' +
    'vsec=7 u64!; vnsec=8 u64!; isec=9 u64!; insec=10 u64!',
  fh_entry: 'bytes=1 u32!; type=2 u32!; handle=3 u64*; path=4 str; mnt_id=5 u32',
  irmap_cache_entry: 'dev=1 u32! dev odev; inode=2 u64!; path=3 str!',
  inotify_wd_entry:
    'id=1 u32!; i_ino=2 u64!; mask=3 u32! hex; ignored_mask=4 u32! hex; s_dev=5 u32! dev; wd=6 u32!; f_handle=7 fh_entry!',
  inotify_file_entry: 'id=1 u32!; flags=2 u32! hex; fown=4 fown_entry!; wd=5 inotify_wd_entry*',
  fanotify_inode_mark_entry: 'i_ino=1 u64!; f_handle=2 fh_entry!',
  fanotify_mount_mark_entry: 'mnt_id=1 u32!; path=2 str',
  fanotify_mark_entry:
    'id=1 u32!; type=2 mark_type!; mflags=3 u32! hex; mask=4 u32! hex; ignored_mask=5 u32! hex; s_dev=6 u32! dev; ' +
    'ie=7 fanotify_inode_mark_entry; me=8 fanotify_mount_mark_entry',
  fanotify_file_entry:
    'id=1 u32!; flags=2 u32! hex; fown=3 fown_entry!; faflags=4 u32! hex; evflags=5 u32! hex; mark=6 fanotify_mark_entry*',
  memfd_file_entry: 'id=1 u32!; flags=2 u32! flags:rfile.flags; pos=3 u64!; fown=4 fown_entry!; inode_id=5 u32!',
  ns_file_entry: 'id=1 u32!; ns_id=2 u32!; ns_cflag=3 u32!; flags=4 u32!',
  ext_file_entry: 'id=1 u32!; fown=5 fown_entry!',
  pidfd_entry: 'id=1 u32!; ino=2 u32!; flags=3 u32!; nspid=4 i32!; fown=5 fown_entry!',
  tunfile_entry: 'id=1 u32!; netdev=2 str; detached=3 bool; ns_id=4 u32',
  tun_link_entry: 'flags=1 u32! hex; owner=2 i32!; group=3 i32!; vnethdr=4 u32!; sndbuf=5 u32!',
  bpfmap_file_entry:
    'id=1 u32!; flags=2 u32! flags:rfile.flags; pos=3 u64!; fown=4 fown_entry!; map_type=5 u32!; key_size=6 u32!; ' +
    'value_size=7 u32!; map_id=8 u32!; max_entries=9 u32!; map_flags=10 u32!; memlock=11 u64!; frozen=12 bool!; ' +
    'map_name=13 str!; ifindex=14 u32!; mnt_id=15 s32; map_extra=16 u64',
  bpfmap_data_entry: 'map_id=1 u32!; keys_bytes=2 u32!; values_bytes=3 u32!; count=4 u32!',
  tty_file_entry: 'id=1 u32!; tty_info_id=2 u32!; flags=3 u32! hex; fown=4 fown_entry!; regf_id=6 u32',
  tty_info_entry:
    'id=1 u32!; type=2 TtyType!; locked=3 bool!; exclusive=4 bool!; packet_mode=5 bool!; sid=6 u32!; pgrp=7 u32!; ' +
    'rdev=8 u32!; termios=9 termios_entry; termios_locked=10 termios_entry; winsize=11 winsize_entry; ' +
    'pty=12 tty_pty_entry; dev=13 u32; uid=14 u32; gid=15 u32',
  tty_data_entry: 'tty_id=1 u32!; data=2 bytes!',
  termios_entry:
    'c_iflag=1 u32!; c_oflag=2 u32!; c_cflag=3 u32!; c_lflag=4 u32!; c_line=5 u32!; c_ispeed=6 u32!; ' +
    'c_ospeed=7 u32!; c_cc=8 u32*',
  winsize_entry: 'ws_row=1 u32!; ws_col=2 u32!; ws_xpixel=3 u32!; ws_ypixel=4 u32!',
  tty_pty_entry: 'index=1 u32!',
  mnt_entry:
    'fstype=1 u32!; mnt_id=2 u32!; root_dev=3 u32! dev; parent_mnt_id=4 u32!; flags=5 u32! hex; root=6 str!; ' +
    'mountpoint=7 str!; source=8 str!; options=9 str!; shared_id=10 u32; master_id=11 u32; with_plugin=12 bool; ' +
    'ext_mount=13 bool; fsname=14 str; internal_sharing=15 bool; deleted=16 bool; sb_flags=17 u32 hex; ext_key=18 str',
  autofs_entry:
    'fd=1 i32!; pgrp=2 i32!; timeout=3 i32!; minproto=4 i32!; maxproto=5 i32!; mode=6 i32!; uid=7 i32; gid=8 i32; ' +
    'read_fd=9 i32',
  binfmt_misc_entry:
    'name=1 str!; enabled=2 bool!; interpreter=3 str!; flags=4 str; extension=5 str; magic=6 str; mask=7 str; offset=8 i32',

  // --- sockets -------------------------------------------------------------------------------------
  sk_opts_entry:
    'so_sndbuf=1 u32!; so_rcvbuf=2 u32!; so_snd_tmo_sec=3 u64!; so_snd_tmo_usec=4 u64!; so_rcv_tmo_sec=5 u64!; ' +
    'so_rcv_tmo_usec=6 u64!; reuseaddr=7 bool; so_priority=8 u32; so_rcvlowat=9 u32; so_mark=10 u32; ' +
    'so_passcred=11 bool; so_passsec=12 bool; so_dontroute=13 bool; so_no_check=14 bool; so_bound_dev=15 str; ' +
    'so_filter=16 fx64*; so_reuseport=17 bool; so_broadcast=18 bool; so_keepalive=19 bool; tcp_keepcnt=20 u32; ' +
    'tcp_keepidle=21 u32; tcp_keepintvl=22 u32; so_oobinline=23 u32; so_linger=24 u32; so_buf_lock=25 u32',
  ip_opts_raw_entry: 'hdrincl=1 bool; nodefrag=2 bool; checksum=3 bool; icmpv_filter=4 u32*',
  ip_opts_entry: 'freebind=1 bool; raw=4 ip_opts_raw_entry; pktinfo=5 bool; tos=6 u32; ttl=7 u32',
  tcp_opts_entry: 'cork=1 bool; nodelay=2 bool; keepcnt=3 u32; keepidle=4 u32; keepintvl=5 u32',
  inet_sk_entry:
    'id=1 u32!; ino=2 u32!; family=3 u32! dict:sk; type=4 u32! dict:sk; proto=5 u32! dict:sk; state=6 u32! dict:sk; ' +
    'src_port=7 u32!; dst_port=8 u32!; flags=9 u32! hex; backlog=10 u32!; src_addr=11 u32* ip; dst_addr=12 u32* ip; ' +
    'fown=13 fown_entry!; opts=14 sk_opts_entry!; v6only=15 bool; ip_opts=16 ip_opts_entry; ifname=17 str; ' +
    'ns_id=18 u32; shutdown=19 sk_shutdown; tcp_opts=20 tcp_opts_entry',
  file_perms_entry: 'mode=1 u32!; uid=2 u32!; gid=3 u32!',
  unix_sk_entry:
    'id=1 u32!; ino=2 u32!; type=3 u32! dict:sk; state=4 u32! dict:sk; flags=5 u32! hex; uflags=6 u32! hex; ' +
    'backlog=7 u32!; peer=8 u32!; fown=9 fown_entry!; opts=10 sk_opts_entry!; name=11 bytes! conv:unix_name; ' +
    'shutdown=12 sk_shutdown; file_perms=13 file_perms_entry; name_dir=14 str; deleted=15 bool; ns_id=16 u32; ' +
    'mnt_id=17 s32',
  packet_mclist: 'index=1 u32!; type=2 u32!; addr=3 bytes!',
  packet_ring:
    'block_size=1 u32!; block_nr=2 u32!; frame_size=3 u32!; frame_nr=4 u32!; retire_tmo=5 u32!; sizeof_priv=6 u32!; ' +
    'features=7 u32!',
  packet_sock_entry:
    'id=1 u32!; type=2 u32!; protocol=3 u32!; flags=4 u32! hex; ifindex=5 u32!; fown=6 fown_entry!; ' +
    'opts=7 sk_opts_entry!; version=8 u32!; reserve=9 u32!; aux_data=10 bool!; orig_dev=11 bool!; vnet_hdr=12 bool!; ' +
    'loss=13 bool!; timestamp=14 u32!; copy_thresh=15 u32!; mclist=16 packet_mclist*; fanout=17 u32; ' +
    'rx_ring=18 packet_ring; tx_ring=19 packet_ring; ns_id=20 u32',
  netlink_sk_entry:
    'id=1 u32!; ino=2 u32!; protocol=3 u32!; state=4 u32!; flags=6 u32! hex; portid=7 u32!; groups=8 u32*; ' +
    'dst_portid=9 u32!; dst_group=10 u32!; fown=11 fown_entry!; opts=12 sk_opts_entry!; ns_id=13 u32',
  scm_entry: 'type=1 u32!; rights=2 u32*',
  sk_packet_entry: 'id_for=1 u32!; length=2 u32!; scm=4 scm_entry*',
  tcp_stream_entry:
    'inq_len=1 u32!; inq_seq=2 u32!; outq_len=3 u32!; outq_seq=4 u32!; opt_mask=5 u32! hex; snd_wscale=6 u32!; ' +
    'mss_clamp=7 u32!; rcv_wscale=8 u32; timestamp=9 u32; cork=10 bool; nodelay=11 bool; unsq_len=12 u32; ' +
    'snd_wl1=13 u32; snd_wnd=14 u32; max_window=15 u32; rcv_wnd=16 u32; rcv_wup=17 u32',

  // --- namespaces, network, cgroups --------------------------------------------------------------
  sysctl_entry: 'type=1 SysctlType!; iarg=2 i32; sarg=3 str',
  macvlan_link_entry: 'mode=1 u32!; flags=2 u32',
  sit_entry:
    'link=1 u32; local=2 u32* ip; remote=3 u32* ip; ttl=4 u32; tos=5 u32; pmtudisc=6 bool; proto=7 u32; flags=8 u32; ' +
    'encap_type=9 u32; encap_flags=10 u32; encap_sport=11 u32; encap_dport=12 u32; rd_prefixlen=13 u32; ' +
    'rd_prefix=14 u32* ip; relay_prefixlen=15 u32; relay_prefix=16 u32* ip',
  net_device_entry:
    'type=1 nd_type!; ifindex=2 u32!; mtu=3 u32!; flags=4 u32! hex; name=5 str!; tun=6 tun_link_entry; ' +
    'address=7 bytes; conf=8 i32*; conf4=9 sysctl_entry*; conf6=10 sysctl_entry*; macvlan=11 macvlan_link_entry; ' +
    'peer_ifindex=12 u32; peer_nsid=13 u32; master=14 u32; sit=15 sit_entry',
  netns_id: 'target_ns_id=1 u32!; netnsid_value=2 i32!',
  netns_entry:
    'def_conf=1 i32*; all_conf=2 i32*; def_conf4=3 sysctl_entry*; all_conf4=4 sysctl_entry*; ' +
    'def_conf6=5 sysctl_entry*; all_conf6=6 sysctl_entry*; nsids=7 netns_id*; ext_key=8 str; ' +
    'unix_conf=9 sysctl_entry*; ipv4_sysctl=10 sysctl_entry*',
  cgroup_perms: 'mode=1 u32!; uid=2 u32!; gid=3 u32!',
  cgroup_prop_entry: 'name=1 str!; value=2 str!; perms=3 cgroup_perms',
  cgroup_dir_entry: 'dir_name=1 str!; children=2 cgroup_dir_entry*; properties=3 cgroup_prop_entry*; dir_perms=4 cgroup_perms',
  cg_controller_entry: 'cnames=1 str*; dirs=2 cgroup_dir_entry*; is_threaded=3 bool',
  cg_member_entry: 'name=1 str!; path=2 str!; cgns_prefix=3 u32',
  cg_set_entry: 'id=1 u32!; ctls=2 cg_member_entry*',
  cgroup_entry: 'sets=1 cg_set_entry*; controllers=2 cg_controller_entry*',
  aa_policy: 'name=1 str!; blob=2 bytes!',
  aa_namespace: 'name=1 str!; policies=2 aa_policy*; namespaces=3 aa_namespace*',
  apparmor_entry: 'namespaces=1 aa_namespace*',
};

const SCALARS: Record<string, ScalarType> = {
  u32: 'uint32', u64: 'uint64', i32: 'int32', i64: 'int64', s32: 'sint32', s64: 'sint64', bool: 'bool',
  str: 'string', bytes: 'bytes', fx32: 'fixed32', fx64: 'fixed64', sfx32: 'sfixed32', sfx64: 'sfixed64',
  float: 'float', double: 'double',
};

const enumCache = new Map<string, EnumDef>();
const messageCache = new Map<string, MessageDef>();

function enumDef(name: string): EnumDef {
  let e = enumCache.get(name);
  if (!e) {
    const byNumber = new Map<number, string>();
    for (const item of ENUMS[name]!.split(/\s+/)) {
      const [k, v] = item.split('=');
      byNumber.set(Number(v), k!);
    }
    e = { name, byNumber };
    enumCache.set(name, e);
  }
  return e;
}

function parseOptions(words: string[]): PrettyOptions | undefined {
  if (words.length === 0) return undefined;
  const o: PrettyOptions = {};
  for (const w of words) {
    const [k, v] = w.split(':');
    switch (k) {
      case 'hex': o.hex = true; break;
      case 'ip': o.ipadd = true; break;
      case 'dev': o.dev = true; break;
      case 'odev': o.odev = true; break;
      case 'flags': o.flags = v!; break;
      case 'dict': o.dict = v!; break;
      case 'conv': o.conv = v!; break;
      default: throw new Error(`schema: unknown option ${w}`);
    }
  }
  return o;
}

/** The table of message `name` (built on first use; nested and recursive references resolve lazily). */
export function messageDef(name: string): MessageDef {
  const cached = messageCache.get(name);
  if (cached) return cached;
  const text = MESSAGES[name];
  if (text === undefined) throw new Error(`schema: no message ${name}`);
  const fields: FieldDef[] = [];
  const byNumber = new Map<number, FieldDef>();
  const def: MessageDef = { name, fields, byNumber };
  messageCache.set(name, def); // before resolving fields: recursive messages (cgroup_dir_entry)
  for (const part of text.split(';')) {
    const words = part.trim().split(/\s+/);
    const [nameNum, typeWord, ...opts] = words;
    const [fname, num] = nameNum!.split('=');
    let t = typeWord!;
    let repeated = false;
    let required = false;
    if (t.endsWith('*')) { repeated = true; t = t.slice(0, -1); }
    if (t.endsWith('!')) { required = true; t = t.slice(0, -1); }
    const pretty = parseOptions(opts);
    const scalar = SCALARS[t];
    let field: FieldDef;
    const base = { number: Number(num), name: fname!, repeated, required, ...(pretty ? { pretty } : {}) };
    if (scalar) {
      field = { ...base, type: scalar, wireType: wireTypeOf(scalar) };
    } else if (ENUMS[t] !== undefined) {
      field = { ...base, type: 'enum', enumDef: enumDef(t), wireType: wireTypeOf('enum') };
    } else if (MESSAGES[t] !== undefined) {
      const target = t;
      // resolved lazily through a getter so that definition order does not matter
      const f = { ...base, type: 'message', wireType: wireTypeOf('message') } as FieldDef;
      Object.defineProperty(f, 'message', {
        configurable: true, enumerable: true,
        get: () => {
          const m = messageDef(target);
          Object.defineProperty(f, 'message', { value: m, enumerable: true });
          return m;
        },
      });
      field = f;
    } else {
      throw new Error(`schema: ${name}.${fname}: unknown type ${t}`);
    }
    fields.push(field);
    byNumber.set(field.number, field);
  }
  fields.sort((a, b) => a.number - b.number);
  return def;
}

/** Names of every message of the table. */
export function messageNames(): string[] {
  return Object.keys(MESSAGES);
}

/** An empty table: every field of a message decoded with it is kept as unknown. */
export const UNKNOWN_MESSAGE: MessageDef = { name: 'unknown', fields: [], byNumber: new Map() };
