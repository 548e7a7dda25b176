defmodule Keyring.Cluster.SyncCrashTest do
  # Blob transfer across failures, between real VMs linked by the QUIC mesh
  # only: a provider dying midway, the receiver killed with SIGKILL midway.
  use ExUnit.Case, async: false
  @moduletag :cluster

  alias Keyring.Test.Peers
  import Keyring.Test.Eventually

  @group 16 * 1024

  setup do
    u = "#{System.os_time(:nanosecond)}_#{System.unique_integer([:positive])}"
    %{u: u, dirs: []}
  end

  defp start(name, u) do
    dir = Path.join(System.tmp_dir!(), "keyring-synccrash-#{name}-#{u}")
    p = Peers.start(:"synccrash_#{name}_#{u}", dir: dir)

    on_exit(fn ->
      Peers.stop(p)
      File.rm_rf(dir)
    end)

    p
  end

  defp join(a, others) do
    {:ok, ring} = Peers.call(a, Keyring.Ring, :create, ["files"])

    for o <- others do
      {:ok, invite} = Peers.call(a, Keyring.Ring, :invite, [ring])
      assert {:ok, ^ring} = Peers.call(o, Keyring, :join, [invite])
    end

    ring
  end

  defp key(node), do: Peers.call(node, Keyring.Identity, :public_key, [])

  defp put_shared_file(node, bytes, ring) do
    path = Path.join(node.dir, "blob.bin")
    File.write!(path, :crypto.strong_rand_bytes(bytes))
    {:ok, cid} = Peers.call(node, Keyring.Store, :put_file, [path], 120_000)
    {:ok, _} = Peers.call(node, Keyring.Store, :share, [cid, ring])
    {cid, path}
  end

  defp sigkill(node) do
    os_pid = Peers.call(node, :os, :getpid, []) |> to_string()
    ref = Process.monitor(node.peer)
    {_, 0} = System.cmd("kill", ["-9", os_pid])

    receive do
      {:DOWN, ^ref, _, _, _} -> :ok
    after
      10_000 -> flunk("the VM did not die")
    end
  end

  # The blob is there, its size right, and every blob on the node hashes to
  # its cid (checked on the node: 100+ MiB over the peer's stdio is slow).
  defp assert_intact(node, cid, path) do
    alias Keyring.Store.Cid
    assert Cid.parse!(Cid.of(File.read!(path))) == Cid.parse!(cid)
    assert Peers.call(node, Keyring.Store, :size, [cid]) == {:ok, File.stat!(path).size}
    assert {:ok, _} = Peers.call(node, Keyring.Store, :check, [], 120_000)
  end

  defp transfer(node, id) do
    node |> Peers.call(Keyring.Sync, :transfers, []) |> Enum.find(&(&1.id == id))
  end

  @tag timeout: 300_000
  test "a provider killed midway: the download completes from the other", %{u: u} do
    [a, b, c] = for n <- [:a, :b, :c], do: start(n, u)
    ring = join(a, [b, c])
    size = 96 * 1024 * 1024
    {cid, path} = put_shared_file(a, size, ring)
    # C gets a copy first (and so shares it into the keyring too).
    assert {:ok, _} =
             Peers.call(c, Keyring.Sync, :fetch, [cid, [from: key(a), keyring: ring]], 120_000)

    {c_addr, _join} = Peers.call(c, Keyring.Ring, :addresses, [])

    {:ok, id} =
      Peers.call(b, Keyring.Sync, :fetch, [
        cid,
        [from: [key(a), {key(c), c_addr}], keyring: ring, async: true]
      ])

    # Kill A as soon as B has verified anything from it.
    a_key = key(a)
    eventually(fn -> Map.get(transfer(b, id).providers, a_key, 0) > 0 end, 30_000, "bytes from A")
    Peers.kill(a)

    t = eventually(fn -> (t = transfer(b, id)) && t.stage != :running && t end, 60_000, "the end")
    assert t.stage == :done, inspect(t)
    assert t.bytes_done == size
    assert t.providers[key(c)] > 0
    assert {:ok, true} == {:ok, Peers.call(b, Keyring.Store, :has?, [cid])}
    assert_intact(b, cid, path)
  end

  @tag timeout: 300_000
  test "the receiver killed with SIGKILL mid-download resumes with only the missing groups",
       %{u: u} do
    [a, b] = for n <- [:a, :b], do: start(n, u)
    ring = join(a, [b])
    size = 160 * 1024 * 1024
    {cid, path} = put_shared_file(a, size, ring)

    {:ok, id} =
      Peers.call(b, Keyring.Sync, :fetch, [cid, [from: key(a), keyring: ring, async: true]])

    # Past the first durable save of the partial blob (every 64 MiB).
    eventually(fn -> transfer(b, id).bytes_done > 80 * 1024 * 1024 end, 60_000, "80 MiB")
    sigkill(b)

    b2 = Peers.start(:"synccrash_b2_#{u}", dir: b.dir)
    on_exit(fn -> Peers.stop(b2) end)
    {:ok, partial} = Peers.call(b2, Keyring.Store, :partial, [cid])
    had = Enum.reduce(partial.have, 0, fn {s, e}, acc -> acc + (e - s) end)
    groups = div(size, @group)
    assert had > 0 and had < groups, "kept #{had} of #{groups} groups"

    assert {:ok, t} =
             Peers.call(b2, Keyring.Sync, :fetch, [cid, [from: key(a), keyring: ring]], 120_000)

    # Only the missing groups were sent (and each once).
    assert t.bytes_done == (groups - had) * @group
    assert_intact(b2, cid, path)
  end
end
