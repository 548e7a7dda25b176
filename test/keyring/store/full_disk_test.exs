defmodule Keyring.Store.FullDiskTest do
  # A store on a 4 MiB tmpfs: filling it must give {:error, :no_space} (never a
  # crash), and every blob acknowledged before that must still read back.
  # Needs root to mount tmpfs; test_helper.exs excludes :tmpfs where it can't.
  use ExUnit.Case, async: true

  alias Keyring.Store
  alias Keyring.Test.TmpDir

  @moduletag :tmpfs

  setup do
    dir = TmpDir.new("keyring-tmpfs")
    {_, 0} = System.cmd("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", dir])
    on_exit(fn -> System.cmd("umount", ["-l", dir]) end)
    %{dir: dir}
  end

  test "a full disk is {:error, :no_space} and loses no acknowledged blob", %{dir: dir} do
    start_supervised!({Keyring, name: FullDisk, data_dir: dir})
    k = [instance: FullDisk]

    {acked, error} =
      Enum.reduce_while(1..1_000, {[], nil}, fn i, {acked, nil} ->
        case Store.put(:crypto.strong_rand_bytes(60_000) <> <<i::32>>, k) do
          {:ok, cid} -> {:cont, {[cid | acked], nil}}
          {:error, reason} -> {:halt, {acked, reason}}
        end
      end)

    assert error == :no_space
    assert length(acked) > 10

    # The node keeps running and answers errors, never wrong bytes.
    assert {:error, _} = Store.put(:crypto.strong_rand_bytes(60_000), k)

    # The operator makes room (here: grows the tmpfs) and restarts the
    # instance: everything acknowledged is there.
    stop_supervised!(FullDisk)
    {_, 0} = System.cmd("mount", ["-o", "remount,size=16m", dir])
    start_supervised!({Keyring, name: FullDisk, data_dir: dir})

    for cid <- acked do
      assert {:ok, _} = Store.get(cid, k ++ [verify: true])
    end

    assert {:ok, count} = Store.check(k)
    assert count == length(acked)
  end
end
