defmodule Keyring.Cluster.MembershipAntiEntropyTest do
  # Issue 8, item 10, in separate VMs (not connected by Erlang distribution:
  # everything goes over the QUIC mesh). Admin A removes admin R while both
  # are cut off from member C; R, not knowing, adds a key Z and its push
  # reaches C. Only member B is linked to both A and C. Anti-entropy brings
  # both branches everywhere; the fork rule picks A's branch on every honest
  # replica, and C refuses R. (The same scenario in one VM, with the :fork
  # event: test/adversarial/fork_after_revocation_test.exs.)
  use ExUnit.Case, async: false
  @moduletag :cluster

  import Keyring.Test.Eventually
  alias Keyring.Test.{Instances, Peers}

  @interval 300

  setup do
    u = "#{System.os_time(:nanosecond)}_#{System.unique_integer([:positive])}"
    names = [:a, :r, :b, :c]
    dirs = for n <- names, do: Path.join(System.tmp_dir!(), "keyring-ae-#{n}-#{u}")
    opts = [instance_opts: [mesh: [anti_entropy_ms: @interval]]]

    peers =
      for {n, dir} <- Enum.zip(names, dirs),
          do: Peers.start(:"ae_#{n}_#{u}", [dir: dir] ++ opts)

    on_exit(fn ->
      Peers.stop_all(peers)
      Enum.each(dirs, &File.rm_rf/1)
    end)

    Map.new(Enum.zip(names, peers))
  end

  defp key(p), do: Peers.call(p, Keyring.Identity, :public_key, [])
  defp id(p), do: Peers.call(p, Keyring.Identity, :node_id, [])
  defp info(p, ring), do: elem(Peers.call(p, Keyring.Ring, :info, [ring]), 1)
  defp members(p, ring), do: Enum.map(info(p, ring).members, & &1.key)
  defp connected(p, ring), do: Peers.call(p, Instances, :connected, [Keyring, ring])

  defp cut(x, y, ring) do
    Peers.call(x, Instances, :disconnect, [Keyring, ring, key(y)])
    Peers.call(y, Instances, :disconnect, [Keyring, ring, key(x)])
  end

  defp mesh_addr(p), do: elem(Peers.call(p, Keyring.Ring, :addresses, []), 0)

  test "a removed admin's branch on a member cut off from the admin is resolved in every VM",
       %{a: a, r: r, b: b, c: c} do
    {:ok, ring} = Peers.call(a, Keyring.Ring, :create, ["ops"])

    for p <- [r, b, c] do
      {:ok, invite} = Peers.call(a, Keyring.Ring, :invite, [ring])
      {:ok, ^ring} = Peers.call(p, Keyring, :join, [invite])
    end

    {:ok, _} = Peers.call(a, Keyring.Ring, :add_admin, [ring, key(r)])
    len = info(a, ring).length
    eventually(fn -> Enum.all?([r, b, c], &(info(&1, ring).length == len)) end)

    for p <- [b, r],
        do: :ok = Peers.call(p, Keyring.RPC, :connect, [id(c), mesh_addr(c), [keyring: ring]])

    eventually(fn -> key(b) in connected(c, ring) and key(r) in connected(c, ring) end)
    cut(a, c, ring)
    cut(a, r, ring)
    eventually(fn -> connected(a, ring) == [key(b)] and key(a) not in connected(c, ring) end)

    z = :crypto.strong_rand_bytes(32)
    {:ok, _} = Peers.call(r, Keyring.Ring, :add_member, [ring, z, [roles: ["intruder"]]])
    eventually(fn -> z in members(c, ring) end, 5_000, "C took R's entry")
    {:ok, _} = Peers.call(a, Keyring.Ring, :remove_member, [ring, key(r)])

    eventually(
      fn ->
        [ia, ib, ic] = for p <- [a, b, c], do: info(p, ring)

        ia.head == ib.head and ib.head == ic.head and ia.members == ic.members and
          key(r) not in members(c, ring) and z not in members(c, ring)
      end,
      15_000,
      "every honest VM on A's branch"
    )

    for p <- [b, c], do: assert(info(p, ring).forks != [])
    assert key(r) in info(c, ring).revoked

    :ok = Peers.call(c, Keyring, :expose, [:echo, &Function.identity/1, [keyring: ring]])
    c_id = id(c)
    assert {:error, _} = Peers.call(r, Keyring, :call, [c_id, :echo, 1, [keyring: ring]])
    assert {:ok, 1} = Peers.call(b, Keyring, :call, [c_id, :echo, 1, [keyring: ring]])
  end
end
