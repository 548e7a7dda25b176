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

# Gateway tests that drive programs bin/setup installs: headless chromium with
# playwright-core (:browser), the MCP Python SDK and schemathesis (:external).
# Without them they are skipped with a note, unless KEYRING_REQUIRE_EXTERNAL=1
# (bin/test sets it), which makes a missing tool a failure.
root = Path.expand("..", __DIR__)

missing_tools =
  [
    browser:
      File.exists?("/usr/bin/chromium") and System.find_executable("node") != nil and
        File.dir?(Path.join(root, "test/browser/node_modules/playwright-core")),
    external:
      File.exists?(Path.join(root, "_build/venv/bin/schemathesis")) and
        File.dir?(Path.join(root, "_build/venv/lib")) and
        Path.wildcard(Path.join(root, "_build/venv/lib/python*/site-packages/mcp")) != []
  ]
  |> Enum.reject(&elem(&1, 1))
  |> Enum.map(&elem(&1, 0))

missing_tools =
  if missing_tools != [] and System.get_env("KEYRING_REQUIRE_EXTERNAL") == "1" do
    IO.puts(
      :stderr,
      "KEYRING_REQUIRE_EXTERNAL=1 but #{inspect(missing_tools)} tools are missing: run bin/setup"
    )

    []
  else
    if missing_tools != [],
      do:
        IO.puts(
          "Skipping #{inspect(missing_tools)} tests: their tools are not installed (bin/setup installs them)"
        )

    missing_tools
  end

ExUnit.start(
  capture_log: true,
  exclude: [:slow] ++ missing_tools ++ if(can_mount_tmpfs?, do: [], else: [:tmpfs])
)
