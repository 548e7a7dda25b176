defmodule Mix.Tasks.Keyring.GetTest do
  # mix keyring.put --share on one node's data dir, mix keyring.get on
  # another's: the blob crosses the QUIC mesh (a real peer VM serves it).
  use ExUnit.Case, async: false
  @moduletag :cluster

  import ExUnit.CaptureIO

  alias Keyring.Test.{Peers, TmpDir}

  setup do
    Mix.shell(Mix.Shell.Process)
    on_exit(fn -> Mix.shell(Mix.Shell.IO) end)
    u = "#{System.os_time(:nanosecond)}_#{System.unique_integer([:positive])}"
    dir = Path.join(System.tmp_dir!(), "keyring-gettask-a-#{u}")
    a = Peers.start(:"gettask_a_#{u}", dir: dir)

    on_exit(fn ->
      Peers.stop(a)
      File.rm_rf(dir)
    end)

    %{a: a}
  end

  defp stop_cli do
    if pid = Process.whereis(:keyring_cli) do
      Process.unlink(pid)
      Supervisor.stop(pid)
    end
  end

  defp task(mod, args) do
    capture_io(:stderr, fn ->
      try do
        mod.run(args)
      after
        stop_cli()
      end
    end)
  end

  test "put --share on one node, get with a progress bar on another", %{a: a} do
    {:ok, ring} = Peers.call(a, Keyring.Ring, :create, ["files"])
    {:ok, invite} = Peers.call(a, Keyring.Ring, :invite, [ring])
    # B: this VM's CLI instance over its own data dir, made a member first.
    b_dir = TmpDir.new("get-task-b")
    name = :"get_setup_#{System.unique_integer([:positive])}"
    {:ok, pid} = Keyring.start_link(name: name, data_dir: b_dir)
    assert {:ok, ^ring} = Keyring.join(invite, instance: name)
    Process.unlink(pid)
    Supervisor.stop(pid)

    # A stores a file with mix keyring.put --share (its data dir, in its VM
    # the node runs: share it there through the API the task calls).
    data = :crypto.strong_rand_bytes(3 * 1024 * 1024 + 5)
    src = Path.join(a.dir, "src.bin")
    File.write!(src, data)
    {:ok, cid} = Peers.call(a, Keyring.Store, :put_file, [src])
    {:ok, _} = Peers.call(a, Keyring.Store, :share, [cid, ring])
    a_id = Peers.call(a, Keyring.Identity, :node_id, [])
    {a_addr, _} = Peers.call(a, Keyring.Ring, :addresses, [])

    out = Path.join(b_dir, "out.bin")

    progress =
      task(Mix.Tasks.Keyring.Get, [
        cid,
        "--from",
        "#{a_id}@#{a_addr}",
        "--data-dir",
        b_dir,
        "-o",
        out
      ])

    assert File.read!(out) == data
    assert progress =~ "100%"
    assert_received {:mix_shell, :info, ["transfer 1 :done" <> _]}
    assert_received {:mix_shell, :info, [line]}
    assert line == "#{cid} -> #{out}"

    # mix keyring.put --share on B's data dir shares what it stores.
    file = Path.join(b_dir, "note.txt")
    File.write!(file, "for the keyring")
    ring_text = Keyring.Ring.encode_id(ring)
    task(Mix.Tasks.Keyring.Put, [file, "--share", ring_text, "--data-dir", b_dir])
    assert_received {:mix_shell, :info, ["shared into " <> ^ring_text]}
    assert_received {:mix_shell, :info, [note_cid]}
    assert note_cid == Keyring.Store.Cid.of("for the keyring")

    # mix keyring.sync prints the keyring with its shared blobs (the fetched
    # one and the note) and the store's partial downloads (none).
    task(Mix.Tasks.Keyring.Sync, ["--data-dir", b_dir])
    assert_received {:mix_shell, :info, [ring_line]}
    assert ring_line =~ "files: "
    assert ring_line =~ "2 blobs shared here"
    assert_received {:mix_shell, :info, ["store: " <> store_line]}
    assert store_line =~ "0 partial downloads"
  end
end
