defmodule Keyring.RefsTest do
  use ExUnit.Case, async: false

  import Keyring.Test.Instances
  alias Keyring.Refs

  doctest Keyring.Refs

  test "publish moves a ref forward; get and list read it; it survives a restart" do
    {name, start} = restartable_instance(:refs)
    pid = start.()
    {:ok, ring} = Keyring.Ring.create("r", instance: name)
    {:ok, v1} = Keyring.Store.put("v1", instance: name)
    {:ok, v2} = Keyring.Store.put("v2", instance: name)
    :ok = Keyring.Feed.subscribe(instance: name)

    {:ok, r1} = Refs.publish(ring, "site", v1, instance: name)
    assert_receive {:keyring_feed, :ref, ^r1}
    {:ok, r2} = Refs.publish(ring, "site", v2, instance: name)
    {:ok, _} = Refs.publish(ring, "docs/main", v1, instance: name)
    assert {r1.seq, r2.seq, r2.root, r2.author} == {1, 2, v2, key(name)}

    stop(pid)
    start.()
    assert {:ok, ^r2} = Refs.get(ring, key(name), "site", instance: name)
    {:ok, refs} = Refs.list(ring, instance: name)
    assert Enum.map(refs, &{&1.name, &1.seq}) == [{"docs/main", 1}, {"site", 2}]
    assert {:ok, [_, _]} = Refs.list(ring, author: key(name), instance: name)
    assert {:ok, []} = Refs.list(ring, author: <<1::256>>, instance: name)
    {:ok, r3} = Refs.publish(ring, "site", v1, instance: name)
    assert r3.seq == 3
  end

  test "publishing in a keyring this node is not in is refused" do
    a = start_instance(:refs_out)
    {:ok, cid} = Keyring.Store.put("x", instance: a)
    assert {:error, :not_member} = Refs.publish(<<7::256>>, "x", cid, instance: a)
  end
end
