# perf report --no-children --sort dso,symbol -g none: shares of samples by kind of work.
!/^#/ && /%/ {
  p = $1; sub(/%/, "", p); dso = $2; sym = $4
  total += p
  if (dso == "[kernel.kallsyms]") {
    kernel += p
    if (sym ~ /^(finish_task_switch|_raw_spin_unlock_irq|__schedule|schedule|try_to_wake_up|futex|__futex|native_queued_spin|do_futex|select_task_rq|enqueue_task|dequeue_task|update_curr|psi_)/) sched += p
    else if (sym ~ /^(ext4|jbd2|fscrypt|__ext4|d_lookup|__d_lookup|link_path_walk|find_get_block|filemap|xas_|__filemap|rwsem|down_write|up_write|mutex_spin|walk_component|path_|dput|lookup_|generic_perm|security_inode|__brelse|recently_deleted|find_inode_bit)/) fs += p
  }
  if (sym ~ /^(swift_retain|swift_release|swift_bridgeObjectRetain|swift_bridgeObjectRelease|swift_unknownObjectRetain|swift_unknownObjectRelease|swift_nonatomic_retain|swift_nonatomic_release)/) refc += p
  if (sym ~ /^(malloc|_int_malloc|_int_free|cfree|free|__libc_free|__libc_malloc|malloc_consolidate|swift_allocObject|swift_slowAlloc|swift_slowDealloc|swift_deallocClassInstance|swift_deallocObject|swift::StackAllocator|swift_task_alloc|swift_task_dealloc|_swift_task_alloc|tcache|unlink_chunk)/) alloc += p
  if (dso == "sky") own += p
}
END { printf "%.0f %.0f %.0f %.0f %.0f %.0f\n", kernel, sched, fs, refc, alloc, own }
