#!/bin/sh
# PID 1 of a fresh PID/mount/UTS namespace: assemble the host's root from outside paths, then become its init.
# Usage: hostboot.sh RUNDIR LOWERDIRS REPODIR HOSTNAME
set -eu
RUN="$1"; LOWER="$2"; REPO="$3"; NAME="$4"
R="$RUN/root"
hostname "$NAME"
mount -t overlay overlay -o "lowerdir=$LOWER,upperdir=$RUN/upper,workdir=$RUN/work" "$R"
mkdir -p "$R/etc/gpu-lab" "$R/srv/gpu-lab-repo" "$R/dev" "$R/.oldroot"
mount --bind "$RUN/ctl" "$R/etc/gpu-lab"
mount --bind "$REPO" "$R/srv/gpu-lab-repo"
mount -o remount,bind,ro "$R/srv/gpu-lab-repo"
mount -t tmpfs -o mode=755,size=8m tmpfs "$R/dev"
mknod -m 666 "$R/dev/null" c 1 3
mknod -m 666 "$R/dev/zero" c 1 5
mknod -m 666 "$R/dev/full" c 1 7
mknod -m 666 "$R/dev/random" c 1 8
mknod -m 666 "$R/dev/urandom" c 1 9
mknod -m 666 "$R/dev/tty" c 5 0
mkdir -p "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"
cd "$R"
pivot_root . .oldroot
exec chroot . /bin/sh -c 'mount -t proc proc /proc && umount -l /.oldroot && rmdir /.oldroot && exec /usr/bin/python3 -I /usr/sbin/gpu-lab-init'
