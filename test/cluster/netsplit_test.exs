defmodule Keyring.Cluster.NetsplitTest do
  # Random split/heal/write schedules (in the spirit of breaking-pp for
  # Phoenix.Tracker): after a final heal, every replica holds the same map,
  # no write that was never overwritten or deleted is lost, and presence
  # agrees on every node.
  use ExUnit.Case, async: false
  @moduletag :cluster
  @moduletag timeout: 240_000

  alias Keyring.Test.Peers
  import Keyring.Test.Eventually

  @steps 25

  setup_all do
    peers = Peers.start_many(:nsplit, 4, coordinator: [heartbeat: 200])
    Peers.connect_all(peers)

    for p <- peers do
      {:ok, _} =
        Peers.call(p, Supervisor, :start_child, [
          Keyring.Application.Supervisor,
          {Keyring.CRDT, name: Split, sync_interval: 300}
        ])
    end

    on_exit(fn -> Peers.stop_all(peers) end)
    {:ok, peers: peers}
  end

  for seed <- [11, 23, 42] do
    test "schedule #{seed} converges with nothing lost", %{peers: peers} do
      :rand.seed(:exsss, {unquote(seed), 7, 9})
      heal(peers)

      {unique, _} =
        Enum.reduce(1..@steps, {%{}, 0}, fn i, acc -> step(peers, acc, unquote(seed), i) end)

      heal(peers)

      maps = fn -> Enum.map(peers, &Peers.call(&1, Keyring.CRDT, :to_map, [Split])) end
      eventually(fn -> maps.() |> Enum.uniq() |> length() == 1 end, 30_000, "maps converge")
      [map | _] = maps.()
      for {key, value} <- unique, do: assert(Map.get(map, key) == value, "lost #{inspect(key)}")

      want = peers |> Enum.map(& &1.node) |> Enum.sort()

      eventually(
        fn -> Enum.all?(peers, &(Peers.active_nodes(&1) == want)) end,
        30_000,
        "presence"
      )
    end
  end

  # unique: keys written once and never touched again -> their value.
  defp step(peers, {unique, n}, seed, i) do
    case :rand.uniform(6) do
      1 ->
        split(peers)
        {unique, n}

      2 ->
        heal(peers)
        {unique, n}

      3 ->
        # Contended key: any value may win, only convergence is checked.
        p = Enum.random(peers)
        :ok = Peers.call(p, Keyring.CRDT, :put, [Split, {:hot, :rand.uniform(3)}, {p.name, i}])
        {unique, n}

      4 ->
        :ok =
          Peers.call(Enum.random(peers), Keyring.CRDT, :delete, [Split, {:hot, :rand.uniform(3)}])

        {unique, n}

      _ ->
        key = {:unique, seed, i}
        :ok = Peers.call(Enum.random(peers), Keyring.CRDT, :put, [Split, key, i])
        {Map.put(unique, key, i), n + 1}
    end
  end

  defp split(peers) do
    {left, right} = Enum.split(Enum.shuffle(peers), :rand.uniform(3))
    for a <- left, b <- right, do: Peers.disconnect(a, b)
  end

  defp heal(peers) do
    for a <- peers, b <- peers, a.node < b.node do
      true = Peers.connect(a, b)
    end
  end
end
