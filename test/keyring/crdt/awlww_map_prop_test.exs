defmodule Keyring.CRDT.AWLWWMapPropTest do
  use ExUnit.Case, async: true

  alias Keyring.CRDT.{AWLWWMap, HLC}

  # A simulated replica: {id, counter, clock, map}. Operations are run on random
  # replicas at random (possibly equal) wall times; deltas are then delivered
  # in any order, duplicated or lost.
  @replicas [:a, :b, :c]

  defp op_gen do
    :proper_types.oneof([
      :proper_types.tuple([
        :proper_types.exactly(:put),
        :proper_types.elements(@replicas),
        :proper_types.integer(0, 4),
        :proper_types.integer(0, 3),
        :proper_types.integer(0, 3)
      ]),
      :proper_types.tuple([
        :proper_types.exactly(:delete),
        :proper_types.elements(@replicas),
        :proper_types.integer(0, 4)
      ]),
      # deliver everything produced so far by one replica to another
      :proper_types.tuple([
        :proper_types.exactly(:deliver),
        :proper_types.elements(@replicas),
        :proper_types.elements(@replicas)
      ])
    ])
  end

  defp new_world, do: Map.new(@replicas, &{&1, {0, HLC.new(), AWLWWMap.new(), []}})

  # Runs ops; returns {world, deltas}. deltas: list of {from, delta}.
  defp run(ops) do
    Enum.reduce(ops, {new_world(), []}, fn
      {:put, r, key, value, wall}, {world, deltas} ->
        {counter, clock, map, seen} = world[r]
        clock = HLC.tick(clock, wall)
        {map, delta, _} = AWLWWMap.put(map, r, counter + 1, clock, key, value)
        {Map.put(world, r, {counter + 1, clock, map, seen}), [{r, delta} | deltas]}

      {:delete, r, key}, {world, deltas} ->
        {counter, clock, map, seen} = world[r]
        {map, delta, _} = AWLWWMap.delete(map, key)
        {Map.put(world, r, {counter, clock, map, seen}), [{r, delta} | deltas]}

      {:deliver, from, to}, {world, deltas} ->
        {_, _, from_map, _} = world[from]
        {counter, clock, map, seen} = world[to]
        {map, _} = AWLWWMap.join(map, from_map.entries)
        clock = observe(clock, from_map.entries)
        {Map.put(world, to, {counter, clock, map, seen}), deltas}
    end)
  end

  defp observe(clock, delta) do
    case AWLWWMap.max_hlc(delta) do
      nil -> clock
      remote -> HLC.observe(clock, remote, 0)
    end
  end

  # Three replica states of one run (dots are unique within a run, as in a
  # real cluster where a replica never reuses a counter).
  defp states_gen do
    :proper_types.bind(
      :proper_types.list(op_gen()),
      fn ops ->
        {world, _} = run(ops)
        List.to_tuple(for r <- @replicas, do: world |> Map.fetch!(r) |> elem(2))
      end,
      false
    )
  end

  defp j(a, b), do: a |> AWLWWMap.join(b.entries) |> elem(0)
  defp same?(a, b), do: a.entries == b.entries and a.root == b.root

  defp check(prop, n \\ 300) do
    assert :proper.quickcheck(prop, [:quiet, numtests: n]) == true
  end

  test "join is commutative" do
    check(:proper.forall(states_gen(), fn {a, b, _} -> same?(j(a, b), j(b, a)) end))
  end

  test "join is associative" do
    check(:proper.forall(states_gen(), fn {a, b, c} -> same?(j(j(a, b), c), j(a, j(b, c))) end))
  end

  test "join is idempotent" do
    check(
      :proper.forall(states_gen(), fn {a, b, _} ->
        ab = j(a, b)
        same?(j(a, a), a) and same?(j(ab, b), ab) and same?(j(ab, a), ab)
      end)
    )
  end

  test "any delivery order, duplication or loss, then anti-entropy, converges" do
    # ops, then for every delta a delivery plan: which replicas get it, how often
    plan_gen =
      :proper_types.tuple([
        :proper_types.list(op_gen()),
        :proper_types.list(
          :proper_types.tuple([:proper_types.elements(@replicas), :proper_types.integer(0, 2)])
        ),
        :proper_types.integer()
      ])

    check(
      :proper.forall(plan_gen, fn {ops, deliveries, seed} ->
        {world, deltas} = run(ops)
        :rand.seed(:exsss, {seed, 1, 2})
        # Each delta goes to the listed replica 0 (lost), 1 or 2 (duplicated)
        # times, in a shuffled order.
        plan =
          deltas
          |> Enum.zip(Stream.cycle(if deliveries == [], do: [{:a, 1}], else: deliveries))
          |> Enum.flat_map(fn {{_from, delta}, {to, times}} ->
            List.duplicate({to, delta}, times)
          end)
          |> Enum.shuffle()

        world =
          Enum.reduce(plan, world, fn {to, delta}, world ->
            {c, clock, map, seen} = world[to]
            {map, _} = AWLWWMap.join(map, delta)
            Map.put(world, to, {c, clock, map, seen})
          end)

        # Anti-entropy: bucket comparison and chunked transfer, pairwise.
        maps = Map.new(world, fn {r, {_, _, map, _}} -> {r, map} end)
        maps = anti_entropy(anti_entropy(maps))
        [first | rest] = Map.values(maps)
        Enum.all?(rest, &same?(&1, first)) and all_writes_accounted?(first, deltas)
      end),
      500
    )
  end

  # Models the replica protocol: differing buckets, entries in 2-key chunks.
  defp anti_entropy(maps) do
    for a <- @replicas, b <- @replicas, a != b, reduce: maps do
      maps ->
        buckets = AWLWWMap.differing_buckets(maps[a], AWLWWMap.bucket_digests(maps[b]))

        chunks =
          maps[a] |> AWLWWMap.entries_in(buckets) |> Enum.chunk_every(2) |> Enum.map(&Map.new/1)

        Enum.reduce(chunks, maps, fn chunk, maps ->
          {merged, _} = AWLWWMap.join(maps[b], chunk)
          Map.put(maps, b, merged)
        end)
    end
  end

  # Every key ever written is known (as a value or a tombstone) after convergence.
  defp all_writes_accounted?(map, deltas) do
    Enum.all?(deltas, fn {_from, delta} ->
      Enum.all?(Map.keys(delta), &Map.has_key?(map.entries, &1))
    end)
  end

  test "a put concurrent with a delete of the same key wins" do
    {a, d1, _} = AWLWWMap.put(AWLWWMap.new(), :a, 1, {1, 0}, :k, :v1)
    {b, _} = AWLWWMap.join(AWLWWMap.new(), d1)
    {_a, d2, _} = AWLWWMap.put(a, :a, 2, {2, 0}, :k, :v2)
    {_b, d3, _} = AWLWWMap.delete(b, :k)

    for order <- [[d2, d3], [d3, d2]] do
      {m, _} = Enum.reduce(order, {a, []}, fn d, {m, _} -> AWLWWMap.join(m, d) end)
      assert AWLWWMap.value(m, :k) == {:ok, :v2}
    end
  end

  test "concurrent writes resolve to the greatest hybrid clock, whichever replica started first" do
    {a, da, _} = AWLWWMap.put(AWLWWMap.new(), :old_vm, 1, {2_000, 0}, :k, :later)
    {b, db, _} = AWLWWMap.put(AWLWWMap.new(), :young_vm, 1, {1_000, 5}, :k, :earlier)
    {a, _} = AWLWWMap.join(a, db)
    {b, _} = AWLWWMap.join(b, da)
    assert AWLWWMap.value(a, :k) == {:ok, :later}
    assert AWLWWMap.value(b, :k) == {:ok, :later}
    assert AWLWWMap.root(a) == AWLWWMap.root(b)
  end
end
