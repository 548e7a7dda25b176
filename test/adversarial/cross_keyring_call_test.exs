defmodule Keyring.Adversarial.CrossKeyringCallTest do
  # Attack (issue 8, item 12): a node is in keyrings A and B. A member of B,
  # whose admin is somebody else, calls handles the node meant for A, and
  # gets roles/admin rights from whichever shared keyring it connects with.
  use ExUnit.Case, async: false

  import Keyring.Test.Instances

  setup do
    [node, friend, stranger] = [
      start_instance(:node),
      start_instance(:friend),
      start_instance(:x)
    ]

    # Keyring A: created by `node`, `friend` is a member with role "ops".
    a = ring_with(node, [friend], roles: ["ops"])
    # Keyring B: created by `stranger`, who makes `node` a member; the
    # stranger is B's admin (and would pass `& &1.admin`).
    b = ring_with(stranger, [node])
    %{node: node, friend: friend, stranger: stranger, a: a, b: b}
  end

  test "a handle scoped to keyring A is not found from keyring B", ctx do
    :ok = Keyring.expose(:secrets, fn _ -> :top_secret end, instance: ctx.node, keyring: ctx.a)

    assert {:ok, :top_secret} = Keyring.call(id(ctx.node), :secrets, nil, instance: ctx.friend)

    assert {:error, :not_found} =
             Keyring.call(id(ctx.node), :secrets, nil, instance: ctx.stranger, keyring: ctx.b)

    # The node still serves its honest member.
    assert {:ok, :top_secret} = Keyring.call(id(ctx.node), :secrets, nil, instance: ctx.friend)
  end

  test "an unscoped handle on a node in two keyrings serves neither", ctx do
    :ok = Keyring.expose(:admin_op, fn _ -> :done end, instance: ctx.node, authorize: & &1.admin)

    assert {:error, :not_found} =
             Keyring.call(id(ctx.node), :admin_op, nil, instance: ctx.stranger, keyring: ctx.b)

    assert {:error, :not_found} = Keyring.call(id(ctx.node), :admin_op, nil, instance: ctx.friend)
  end

  test "roles and the admin flag come from the keyring the caller came through", ctx do
    :ok =
      Keyring.expose(:whoami, fn _, caller -> {caller.keyring, caller.roles, caller.admin} end,
        instance: ctx.node,
        keyring: :any
      )

    {a, b} = {ctx.a, ctx.b}

    assert {:ok, {^a, ["ops"], false}} =
             Keyring.call(id(ctx.node), :whoami, nil, instance: ctx.friend)

    # The stranger is an admin of B only: it is no admin as seen through A.
    assert {:ok, {^b, ["admin"], true}} =
             Keyring.call(id(ctx.node), :whoami, nil, instance: ctx.stranger, keyring: b)
  end

  test "a caller sharing several keyrings with the node must name one", ctx do
    # `friend` joins B too: now friend and node share A and B.
    {:ok, invite} = Keyring.Ring.invite(ctx.b, instance: ctx.stranger)
    {:ok, _} = Keyring.join(invite, instance: ctx.friend)
    :ok = Keyring.expose(:ping, fn _ -> :pong end, instance: ctx.node, keyring: ctx.a)

    assert {:error, {:ambiguous_keyring, ids}} =
             Keyring.call(id(ctx.node), :ping, nil, instance: ctx.friend)

    assert Enum.sort([ctx.a, ctx.b]) == ids

    assert {:ok, :pong} =
             Keyring.call(id(ctx.node), :ping, nil, instance: ctx.friend, keyring: ctx.a)
  end
end
