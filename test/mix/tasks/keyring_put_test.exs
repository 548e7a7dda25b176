defmodule Mix.Tasks.Keyring.PutTest do
  # The task runs the instance named :keyring_cli, one at a time.
  use ExUnit.Case, async: false

  import ExUnit.CaptureIO

  alias Keyring.Test.TmpDir

  setup do
    Mix.shell(Mix.Shell.Process)
    on_exit(fn -> Mix.shell(Mix.Shell.IO) end)
    %{data: TmpDir.new("put-task")}
  end

  defp put(args) do
    progress =
      capture_io(:stderr, fn ->
        Mix.Tasks.Keyring.Put.run(args)
        pid = Process.whereis(:keyring_cli)
        Process.unlink(pid)
        Supervisor.stop(pid)
      end)

    assert_received {:mix_shell, :info, [cid]}
    {cid, progress}
  end

  test "a directory prints the root that put_dir computes, with a progress line", %{data: data} do
    src = TmpDir.new("put-src")
    File.mkdir_p!(Path.join(src, "x/y"))
    File.write!(Path.join(src, "x/y/z.txt"), "deep")
    File.write!(Path.join(src, "a.txt"), "top")

    {root, progress} = put([src, "--data-dir", data])
    assert progress =~ ~r/2 files, 7 B/

    name = :"put_check_#{System.unique_integer([:positive])}"
    start_supervised!({Keyring, name: name, data_dir: TmpDir.new("put-check")})
    assert {:ok, ^root} = Keyring.DAG.put_dir(src, instance: name)
  end

  test "a file prints its blob cid", %{data: data} do
    dir = TmpDir.new("put-file")
    file = Path.join(dir, "f.bin")
    File.write!(file, "just a blob")
    {cid, progress} = put([file, "--data-dir", data])
    assert cid == Keyring.Store.Cid.of("just a blob")
    assert progress =~ "1 files"
  end

  test "a missing path is a clear error", %{data: data} do
    assert_raise Mix.Error, ~r/could not store .*nope/, fn ->
      capture_io(:stderr, fn ->
        try do
          Mix.Tasks.Keyring.Put.run([Path.join(data, "nope"), "--data-dir", data])
        after
          if pid = Process.whereis(:keyring_cli) do
            Process.unlink(pid)
            Supervisor.stop(pid)
          end
        end
      end)
    end
  end
end
