defmodule Keyring.Mesh.Membership.ConvergencePropTest do
  # Law: a node's membership is a pure function of the set of verified entries
  # it holds. Random concurrent admin operations (adds, removes, admin
  # changes with expiries, root rotations, joins through invites, invite
  # revocations) by several admins on several replicas, with random partial,
  # shuffled and duplicated deliveries in between; once every replica holds
  # every entry, all report the same membership, the same as a ring that
  # received the entries one by one in yet another order.
  use ExUnit.Case, async: true

  alias Keyring.Native

  @t0 1_700_000_000_000
  @replicas 3

  setup_all do
    kp = fn ->
      {:ok, kp} = Native.keypair_generate()
      kp
    end

    roots = for _ <- 1..3, do: kp.()
    admins = for _ <- 1..3, do: kp.()
    members = for _ <- 1..6, do: :crypto.strong_rand_bytes(32)
    admin_keys = Enum.map(admins, &Native.keypair_public_key/1)
    root_keys = Enum.map(roots, &Native.keypair_public_key/1)
    {:ok, ring} = Native.ring_create(hd(roots), "law", admin_keys, @t0)
    {:ok, [genesis]} = Native.ring_entries(ring, [])
    id = hd(root_keys)

    invites =
      for {admin, i} <- Enum.with_index(Enum.take(admins, 2)) do
        {:ok, bin} = Native.invite_create(admin, id, <<i::128>>, @t0 * 2, 2 - i, "", ["j"], nil)

        {bin, Enum.at(admin_keys, i), <<i::128>>}
      end

    world = %{
      genesis: genesis,
      roots: Enum.zip(root_keys, roots),
      admins: admins,
      members: members,
      # keys an op may target: admins, members, later roots
      targets: admin_keys ++ members ++ tl(root_keys),
      invites: invites
    }

    {:ok, world: world}
  end

  defp op_gen do
    :proper_types.oneof([
      :proper_types.tuple([
        :proper_types.exactly(:op),
        :proper_types.integer(0, @replicas - 1),
        # signer: an admin (0..2) or the replica's current root (3)
        :proper_types.integer(0, 3),
        :proper_types.integer(0, 7),
        :proper_types.integer(0, 20),
        :proper_types.integer(0, 1)
      ]),
      :proper_types.tuple([
        :proper_types.exactly(:deliver),
        :proper_types.integer(0, @replicas - 1),
        :proper_types.integer(0, @replicas - 1),
        :proper_types.integer(0, 1_000_000)
      ])
    ])
  end

  defp pick(list, i), do: Enum.at(list, rem(i, length(list)))

  defp summary(ring, now) do
    {:ok, s} = Native.ring_summary(ring, now)
    Map.drop(s, [:verified, :pending, :side])
  end

  defp entries(ring) do
    {:ok, e} = Native.ring_entries(ring, [])
    e
  end

  defp signer(world, ring, 3, now) do
    root = summary(ring, now).root
    Enum.find_value(world.roots, hd(world.admins), fn {k, kp} -> k == root && kp end)
  end

  defp signer(world, _ring, s, _now), do: Enum.at(world.admins, s)

  defp operation(world, ring, kind, t, v, now) do
    target = pick(world.targets, t)
    member = pick(world.members, t)

    case kind do
      k when k in [0, 1] ->
        {:add_member, member, if(v == 0, do: 0, else: now + 5), [[], ["db"]] |> Enum.at(v)}

      2 ->
        {:remove_member, target}

      3 ->
        {:add_admin, target, if(v == 0, do: 0, else: now + 7)}

      4 ->
        {:remove_admin, target}

      5 ->
        {:rotate_root, pick(world.roots, t) |> elem(0)}

      6 ->
        {bin, _, _} = pick(world.invites, t)

        case Native.ring_admit(ring, bin, member, now, 1000) do
          {:ok, op} -> op
          {:error, _} -> nil
        end

      7 ->
        {_, issuer, token} = pick(world.invites, t)
        {:revoke_invite, issuer, token}
    end
  end

  defp run(world, ops) do
    replicas =
      for _ <- 1..@replicas do
        {:ok, r} = Native.ring_open([world.genesis])
        r
      end

    Enum.reduce(ops, {replicas, @t0}, fn
      {:op, r, s, kind, t, v}, {replicas, now} ->
        now = now + 1
        ring = Enum.at(replicas, r)

        if op = operation(world, ring, kind, t, v, now),
          do: Native.ring_append(ring, signer(world, ring, s, now), op, now)

        {replicas, now}

      {:deliver, from, to, seed}, {replicas, now} ->
        :rand.seed(:exsss, {seed, 3, 5})

        batch =
          entries(Enum.at(replicas, from))
          |> Enum.filter(fn _ -> :rand.uniform(3) > 1 end)
          |> Enum.flat_map(fn e -> List.duplicate(e, :rand.uniform(2)) end)
          |> Enum.shuffle()

        {:ok, %{errors: []}} = Native.ring_ingest(Enum.at(replicas, to), batch, now)
        {replicas, now}
    end)
  end

  test "replicas holding the same entries report the same membership", %{world: world} do
    plan = :proper_types.tuple([:proper_types.list(op_gen()), :proper_types.integer()])

    prop =
      :proper.forall(plan, fn {ops, seed} ->
        {replicas, now} = run(world, ops)
        :rand.seed(:exsss, {seed, 1, 2})
        union = replicas |> Enum.flat_map(&entries/1) |> Enum.uniq()

        delivered =
          Enum.all?(replicas, fn ring ->
            {a, b} = union |> Enum.shuffle() |> Enum.split(:rand.uniform(length(union)))

            Enum.all?([a, b], fn chunk ->
              match?({:ok, %{errors: [], rejected: 0}}, Native.ring_ingest(ring, chunk, now))
            end)
          end)

        {:ok, fresh} = Native.ring_open([world.genesis])
        for e <- Enum.shuffle(union), do: {:ok, _} = Native.ring_ingest(fresh, [e], now)
        expected = summary(fresh, now)

        delivered and Enum.all?(replicas, &(summary(&1, now) == expected)) and
          {:ok, expected} == with {:ok, r} <- Native.ring_open(union), do: {:ok, summary(r, now)}
      end)

    assert :proper.quickcheck(prop, [:quiet, numtests: 200, start_size: 10, max_size: 60]) == true
  end
end
