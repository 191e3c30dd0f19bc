//! The seccomp filters: syscalls a sandboxed command never needs and that open ways out (io_uring,
//! ptrace, new namespaces, mounts, keyrings, BPF, `TIOCSTI`), and sockets other than Unix ones
//! unless the network is allowed.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::{Error, Result};

/// Namespace flags of `clone`/`unshare`: a sandboxed command may not make new namespaces.
const NAMESPACE_FLAGS: [u64; 7] = [
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWCGROUP as u64,
];

/// Syscalls refused outright.
const DENIED: &[i64] = &[
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_fsopen,
    libc::SYS_fsmount,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_userfaultfd,
    libc::SYS_kexec_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_open_by_handle_at,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_acct,
];

fn arch() -> Result<TargetArch> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|e| Error::Seccomp(e.to_string()))
}

fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value)
        .map_err(|e| Error::Seccomp(e.to_string()))
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule> {
    SeccompRule::new(conditions).map_err(|e| Error::Seccomp(e.to_string()))
}

/// The filters to install, in order. `inet` allows IPv4/IPv6 sockets (the network namespace then
/// decides what they reach).
pub(crate) fn programs(inet: bool) -> Result<Vec<BpfProgram>> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for &nr in DENIED {
        rules.insert(nr, Vec::new());
    }
    // clone with any namespace flag.
    let clone_rules = NAMESPACE_FLAGS
        .iter()
        .map(|&flag| rule(vec![cond(0, SeccompCmpOp::MaskedEq(flag), flag)?]))
        .collect::<Result<Vec<_>>>()?;
    rules.insert(libc::SYS_clone, clone_rules);
    // Typing into the controlling terminal.
    rules.insert(
        libc::SYS_ioctl,
        vec![
            rule(vec![cond(
                1,
                SeccompCmpOp::MaskedEq(0xffff_ffff),
                libc::TIOCSTI,
            )?])?,
            rule(vec![cond(
                1,
                SeccompCmpOp::MaskedEq(0xffff_ffff),
                libc::TIOCLINUX,
            )?])?,
        ],
    );
    // Sockets: Unix always; IPv4 and IPv6 only when the network is allowed.
    let mut domain = vec![cond(0, SeccompCmpOp::Ne, libc::AF_UNIX as u64)?];
    if inet {
        domain.push(cond(0, SeccompCmpOp::Ne, libc::AF_INET as u64)?);
        domain.push(cond(0, SeccompCmpOp::Ne, libc::AF_INET6 as u64)?);
    }
    rules.insert(libc::SYS_socket, vec![rule(domain.clone())?]);
    rules.insert(libc::SYS_socketpair, vec![rule(domain)?]);
    let deny = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch()?,
    )
    .map_err(|e| Error::Seccomp(e.to_string()))?;
    // clone3 passes its flags in memory, out of the filter's reach: "not implemented" makes libc
    // fall back to clone, whose flags the first filter checks.
    let mut clone3 = BTreeMap::new();
    clone3.insert(libc::SYS_clone3, Vec::new());
    let clone3 = SeccompFilter::new(
        clone3,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch()?,
    )
    .map_err(|e| Error::Seccomp(e.to_string()))?;
    [deny, clone3]
        .into_iter()
        .map(|f| BpfProgram::try_from(f).map_err(|e| Error::Seccomp(e.to_string())))
        .collect()
}

/// Installs the filters on the calling thread (inherited by what it executes). Needs
/// no-new-privileges, which is set first.
pub(crate) fn install(inet: bool) -> Result<()> {
    rustix::thread::set_no_new_privs(true)
        .map_err(|e| Error::Seccomp(format!("no_new_privs: {e}")))?;
    for program in programs(inet)? {
        seccompiler::apply_filter(&program).map_err(|e| Error::Seccomp(e.to_string()))?;
    }
    Ok(())
}
