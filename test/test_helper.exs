# :tmpfs tests mount a small tmpfs (a full-disk scenario); they run only where
# this process may mount (root, not in a restricted container).
can_mount_tmpfs? =
  (fn ->
     dir = Path.join(System.tmp_dir!(), "keyring-mount-probe-#{System.os_time()}")
     File.mkdir_p!(dir)

     try do
       case System.cmd("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir],
              stderr_to_stdout: true
            ) do
         {_, 0} ->
           System.cmd("umount", [dir])
           true

         _ ->
           false
       end
     rescue
       _ -> false
     after
       File.rm_rf(dir)
     end
   end).()

ExUnit.start(
  capture_log: true,
  exclude: [:slow] ++ if(can_mount_tmpfs?, do: [], else: [:tmpfs])
)
